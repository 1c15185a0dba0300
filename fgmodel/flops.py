"""GFLOPs and parameters of a model config, counted on the meta device.

`torch.utils.flop_counter.FlopCounterMode` counts 2 FLOPs per multiply-add for one
image; on the meta device no weights are allocated, so convnextv2_large costs a fraction
of a second. Results are cached per architecture (dropout and pretrained source do not
change the cost), so a search space can call `measure` for every trial.

    python -m fgmodel.flops --backbone convnextv2_large --num-classes 300 --scra-stages 0
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from fgmodel.budget import budget_limit, within_budget
from fgmodel.cli import run_main
from fgmodel.config import ConfigError, ModelConfig
from fgmodel.model import build_model

__all__ = ["Cost", "baseline", "budget_limit", "main", "measure", "report", "within_budget"]


@dataclass(frozen=True)
class Cost:
    gflops: float  # per image, 2 FLOPs per multiply-add
    params: int


def measure(cfg: ModelConfig, num_classes: int, image_size: int) -> Cost:
    """Cost of `cfg` with a `num_classes` head at `image_size` x `image_size` (cached)."""
    return _measure(cfg.backbone, num_classes, tuple(sorted(cfg.scra_stages)), cfg.scra_kernel, image_size)


def baseline(cfg: ModelConfig, num_classes: int, image_size: int = 224) -> Cost:
    """Cost of the same backbone and head without SCRA: the budget's reference."""
    return _measure(cfg.backbone, num_classes, (), cfg.scra_kernel, image_size)


@functools.lru_cache(maxsize=256)
def _measure(backbone: str, num_classes: int, scra_stages: tuple[int, ...], scra_kernel: int, image_size: int) -> Cost:
    if image_size < 16:
        raise ConfigError("data.image_size", f"must be >= 16, got {image_size}")
    cfg = ModelConfig(backbone=backbone, scra_stages=scra_stages, scra_kernel=scra_kernel)
    model = build_model(cfg, num_classes, device="meta").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, image_size, image_size, device="meta"))
    return Cost(gflops=counter.get_total_flops() / 1e9, params=sum(p.numel() for p in model.parameters()))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fgmodel.flops", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="convnextv2_large", help="timm ConvNeXt(-V2) name")
    parser.add_argument("--num-classes", type=int, required=True, help="head size (200 / 300 / 251)")
    parser.add_argument("--scra-stages", type=int, nargs="*", default=[], help="0-based stages followed by SCRA")
    parser.add_argument("--scra-kernel", type=int, default=1, help="SCRA convolution size (1 or 3)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--budget", type=float, default=0.05, help="allowed GFLOPs increase over the baseline at 224")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    return run_main(lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    if args.budget < 0:
        raise ConfigError("budget", f"must be >= 0, got {args.budget}")
    cfg = ModelConfig(backbone=args.backbone, num_classes=args.num_classes,
                      scra_stages=tuple(args.scra_stages), scra_kernel=args.scra_kernel)
    cfg.validate()
    cost = measure(cfg, args.num_classes, args.image_size)
    base = baseline(dataclasses.replace(cfg, scra_stages=()), args.num_classes)
    print(report(cfg, args.image_size, cost, base, args.budget))


def report(cfg: ModelConfig, image_size: int, cost: Cost, base: Cost, budget: float) -> str:
    """The CLI's table: cost, change against the baseline at 224, budget verdict."""
    scra = (f"SCRA {cfg.scra_kernel}x{cfg.scra_kernel} after stage(s) {', '.join(map(str, sorted(cfg.scra_stages)))}"
            if cfg.scra_stages else "no SCRA")
    d_flops, d_params = cost.gflops - base.gflops, cost.params - base.params
    limit = budget_limit(base.gflops, budget)
    verdict = "within" if within_budget(cost.gflops, base.gflops, budget) else "OVER"
    return "\n".join([
        f"{cfg.backbone}, {cfg.num_classes} classes, {scra}, {image_size} px",
        f"GFLOPs:  {cost.gflops:.2f}",
        f"params:  {cost.params / 1e6:.3f}M",
        (f"change:  {d_flops:+.3f} GFLOPs ({d_flops / base.gflops:+.2%}), {d_params / 1e6:+.3f}M params "
         f"({d_params / base.params:+.2%}) vs {cfg.backbone} without SCRA at 224 px "
         f"({base.gflops:.2f} GFLOPs, {base.params / 1e6:.3f}M)"),
        f"budget:  {verdict} the +{budget * 100:g}% budget ({cost.gflops:.2f} vs limit {limit:.2f} GFLOPs)",
    ])


if __name__ == "__main__":
    sys.exit(main())
