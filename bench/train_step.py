"""fgmodel's training step (SCRA, dropout, L2SP on) against a plain timm + cross-entropy + Adam loop.

Both run on the same backbone and the same random images in the same process, in
interleaved rounds (ABAB, then BABA, ...) so drift in machine load hits both alike. The
fgmodel side is `fgmodel._train_step.TrainStep`, the very step `fit` runs, fed the loader's
uint8 batches and normalising them on the device (`Normalize`); the plain side gets the
same images as ready-made float tensors. SCRA adds FLOPs on purpose, so the ratio is also
printed corrected by the FLOPs ratio from `fgmodel.flops` (the throughput in FLOPs/s of
fgmodel relative to the baseline). Target: ratio >= 0.95 once the added FLOPs are set aside.

With ``--compile`` the two sides are instead fgmodel's step with a torch.compile'd forward
against the same step eager (same weights), and the compilation's own time is printed: what
``model.compile`` buys on this device.

    .venv/bin/python bench/train_step.py --threads 1   # steadiest on a shared CPU
    .venv/bin/python bench/train_step.py --threads 1 --compile --image-size 32 --steps 16
    .venv/bin/python bench/train_step.py --device cuda --backbone convnextv2_base --image-size 224 --batch-size 64
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import timm
import torch
import torch.nn.functional as F

from fgmodel import flops
from fgmodel._train_step import Normalize, TrainStep, autocast, make_optimizer, tune_backend
from fgmodel.augment import norm_stats
from fgmodel.config import ModelConfig
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(sides: dict[str, Callable[[], object]], rounds: int, per_round: int,
                device: torch.device) -> dict[str, list[float]]:
    """Seconds of each round of `per_round` calls per side, sides alternating order by round."""
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds):
        for name in (sides if r % 2 == 0 else reversed(sides)):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(per_round):
                sides[name]()
            _sync(device)
            seconds[name].append(time.perf_counter() - t0)
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="convnextv2_atto")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-classes", type=int, default=200)
    p.add_argument("--scra-stages", type=int, nargs="*", default=[0])
    p.add_argument("--dropout", type=float, default=0.45)
    p.add_argument("--l2sp", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=24, help="timed steps per side, split over the rounds")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch intra-op threads (1 is steadier on a shared CPU)")
    p.add_argument("--compile", action="store_true", help="compiled fgmodel step against the same step eager")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tune_backend(device)
    n, size, batch = args.num_classes, args.image_size, args.batch_size

    cfg = ModelConfig(backbone=args.backbone, num_classes=n, scra_stages=tuple(args.scra_stages), dropout=args.dropout)
    torch.manual_seed(0)
    ours = build_model(cfg, n, device=device).to(memory_format=torch.channels_last)  # as fgmodel.fit.fit
    ours.train()
    normalize = Normalize(*norm_stats(args.backbone), device=device)

    def fgmodel_step(model: torch.nn.Module, compiled: bool) -> TrainStep:
        forward = torch.compile(model) if compiled else model
        optimizer = make_optimizer(model.parameters(), "adam", 1e-4, 1e-5, device)
        return TrainStep(model, optimizer, L2SP(model, args.l2sp), forward=forward, prepare=normalize)

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g)
    x = x.contiguous(memory_format=torch.channels_last).to(device)  # as the loader's collate lays it out
    y = torch.randint(0, n, (batch,), generator=g).to(device)

    if args.compile:
        eager = copy.deepcopy(ours)
        step, eager_step = fgmodel_step(ours, True), fgmodel_step(eager, False)
        sides = {"compiled": lambda: step(x, y), "eager": lambda: eager_step(x, y)}
    else:
        plain = timm.create_model(args.backbone, pretrained=False, num_classes=n).to(device)
        plain = plain.to(memory_format=torch.channels_last).train()
        plain_opt = make_optimizer(plain.parameters(), "adam", 1e-4, 1e-5, device)
        x_float = normalize(x)

        def plain_step() -> None:
            plain_opt.zero_grad(set_to_none=True)
            with autocast(device):
                loss = F.cross_entropy(plain(x_float), y)
            loss.backward()
            plain_opt.step()

        step = fgmodel_step(ours, False)
        sides = {"fgmodel": lambda: step(x, y), "plain": plain_step}

    warmup_seconds = {}
    for name, fn in sides.items():
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            fn()
        _sync(device)
        warmup_seconds[name] = time.perf_counter() - t0

    per_round = max(1, args.steps // args.rounds)
    seconds = interleaved(sides, args.rounds, per_round, device)
    images = per_round * batch
    rate = {name: images * len(ts) / sum(ts) for name, ts in seconds.items()}
    first, second = sides
    ratio = rate[first] / rate[second]
    round_ratios = [b / a for a, b in zip(seconds[first], seconds[second])]

    print(f"{args.backbone} @ {size}px, batch {batch}, {device} ({torch.get_num_threads()} threads), "
          f"{args.rounds} rounds x {per_round} steps per side "
          f"(fgmodel: SCRA after stages {list(cfg.scra_stages)}, dropout {args.dropout}, L2SP {args.l2sp}, "
          f"uint8 input normalised on the device)")
    if args.compile:
        print(f"compile + {args.warmup} warm-up steps: {warmup_seconds['compiled']:.1f} s "
              f"(eager warm-up: {warmup_seconds['eager']:.1f} s)")
        print(f"eager step             : {rate['eager']:8.1f} img/s")
        print(f"compiled step          : {rate['compiled']:8.1f} img/s")
        print(f"compiled / eager       : {ratio:.3f}  (per round: {', '.join(f'{r:.3f}' for r in round_ratios)}; "
              f"median {statistics.median(round_ratios):.3f})")
        return
    flops_ours = flops.measure(cfg, n, size).gflops
    flops_plain = flops.baseline(cfg, n, size).gflops
    flops_ratio = flops_ours / flops_plain
    print(f"plain timm + CE + Adam : {rate['plain']:8.1f} img/s")
    print(f"fgmodel TrainStep      : {rate['fgmodel']:8.1f} img/s")
    print(f"throughput ratio       : {ratio:.3f}  (per round: {', '.join(f'{r:.3f}' for r in round_ratios)}; "
          f"median {statistics.median(round_ratios):.3f})")
    print(f"FLOPs ratio            : {flops_ratio:.4f}  ({flops_ours:.4f} / {flops_plain:.4f} GFLOPs per image)")
    print(f"FLOPs-corrected ratio  : {ratio * flops_ratio:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
