"""fgmodel's training step (SCRA, dropout, L2SP on) against a plain timm + cross-entropy + Adam loop.

Both run on the same backbone and the same random tensors in the same process, in
interleaved rounds (ABAB, then BABA, ...) so drift in machine load hits both alike. The
fgmodel side is `fgmodel._train_step.TrainStep`, the very step `fit` runs. SCRA adds
FLOPs on purpose, so the ratio is also printed corrected by the FLOPs ratio from
`fgmodel.flops` (the throughput in FLOPs/s of fgmodel relative to the baseline).
Target: ratio >= 0.95 once the added FLOPs are set aside.

    .venv/bin/python bench/train_step.py --threads 1   # steadiest on a shared CPU
    .venv/bin/python bench/train_step.py --device cuda --backbone convnextv2_base --image-size 224 --batch-size 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F

from fgmodel import flops
from fgmodel._train_step import TrainStep, autocast, make_optimizer
from fgmodel.config import ModelConfig
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n, size, batch = args.num_classes, args.image_size, args.batch_size

    cfg = ModelConfig(backbone=args.backbone, num_classes=n, scra_stages=tuple(args.scra_stages), dropout=args.dropout)
    torch.manual_seed(0)
    ours = build_model(cfg, n, device=device)
    plain = timm.create_model(args.backbone, pretrained=False, num_classes=n).to(device)
    ours = ours.to(memory_format=torch.channels_last)  # as fgmodel.fit.fit, on every device
    plain = plain.to(memory_format=torch.channels_last)
    ours.train()
    plain.train()
    step = TrainStep(ours, make_optimizer(ours.parameters(), "adam", 1e-4, 1e-5, device), L2SP(ours, args.l2sp))
    plain_opt = make_optimizer(plain.parameters(), "adam", 1e-4, 1e-5, device)

    def plain_step(x: torch.Tensor, y: torch.Tensor) -> None:
        plain_opt.zero_grad(set_to_none=True)
        with autocast(device):
            loss = F.cross_entropy(plain(x), y)
        loss.backward()
        plain_opt.step()

    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, n, (batch,), device=device)
    sides = {"fgmodel": lambda: step(x, y), "plain": lambda: plain_step(x, y)}
    for fn in sides.values():
        for _ in range(args.warmup):
            fn()
    _sync(device)

    per_round = max(1, args.steps // args.rounds)
    seconds = {name: [] for name in sides}
    for r in range(args.rounds):
        for name in (sides if r % 2 == 0 else reversed(sides)):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(per_round):
                sides[name]()
            _sync(device)
            seconds[name].append(time.perf_counter() - t0)

    images = per_round * batch
    rate = {name: images * len(ts) / sum(ts) for name, ts in seconds.items()}
    ratio = rate["fgmodel"] / rate["plain"]
    round_ratios = [p_t / o_t for o_t, p_t in zip(seconds["fgmodel"], seconds["plain"])]
    flops_ours = flops.measure(cfg, n, size).gflops
    flops_plain = flops.baseline(cfg, n, size).gflops
    flops_ratio = flops_ours / flops_plain

    print(f"{args.backbone} @ {size}px, batch {batch}, {device} ({torch.get_num_threads()} threads), "
          f"{args.rounds} rounds x {per_round} steps per side "
          f"(fgmodel: SCRA after stages {list(cfg.scra_stages)}, dropout {args.dropout}, L2SP {args.l2sp})")
    print(f"plain timm + CE + Adam : {rate['plain']:8.1f} img/s")
    print(f"fgmodel TrainStep      : {rate['fgmodel']:8.1f} img/s")
    print(f"throughput ratio       : {ratio:.3f}  (per round: {', '.join(f'{r:.3f}' for r in round_ratios)}; "
          f"median {statistics.median(round_ratios):.3f})")
    print(f"FLOPs ratio            : {flops_ratio:.4f}  ({flops_ours:.4f} / {flops_plain:.4f} GFLOPs per image)")
    print(f"FLOPs-corrected ratio  : {ratio * flops_ratio:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
