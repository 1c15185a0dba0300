"""Cost of the L2SP term relative to a plain training step of the same model, same run.

Three step variants on a small ConvNeXt-V2 on CPU, timed round-robin so machine load
hits them alike (median of the rounds):
  plain  forward + backward + Adam step
  fused  plain + `L2SP.apply_` (one torch._foreach pass on the gradients)
  naive  the penalty as a Python loop of autograd ops added to the loss

    python bench/l2sp.py [--backbone convnextv2_atto --image-size 64 --batch 8 --rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fgmodel.config import ModelConfig
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model

LAM = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="convnextv2_atto")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=args.backbone, scra_stages=(0,)), 20)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    l2sp = L2SP(model, LAM)
    named = dict(model.named_parameters())
    params = [named[n] for n in model.l2sp_param_names]
    refs = [p.detach().clone() for p in params]
    x = torch.randn(args.batch, 3, args.image_size, args.image_size)
    y = torch.randint(0, 20, (args.batch,))

    def plain() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def fused() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        l2sp.apply_()
        optimizer.step()

    def naive() -> None:
        optimizer.zero_grad(set_to_none=True)
        penalty = sum(((p - r) ** 2).sum() for p, r in zip(params, refs))
        (F.cross_entropy(model(x), y) + LAM * penalty).backward()
        optimizer.step()

    def fused_alone() -> None:
        l2sp.apply_()

    def naive_alone() -> None:
        (LAM * sum(((p - r) ** 2).sum() for p, r in zip(params, refs))).backward()

    steps = {"plain": plain, "fused": fused, "naive": naive, "fused_alone": fused_alone, "naive_alone": naive_alone}
    for step in steps.values():  # warm-up
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}

    base = med["plain"]
    print(f"{args.backbone} + SCRA at {args.image_size} px, batch {args.batch}, "
          f"CPU x{torch.get_num_threads()} threads, "
          f"{len(params)} L2SP tensors ({sum(p.numel() for p in params) / 1e6:.2f}M values), "
          f"median of {args.rounds} round-robin rounds")
    print(f"plain step                      {base * 1e3:8.1f} ms   1.000x")
    for name, label in (("fused", "step + fused L2SP (apply_)"), ("naive", "step + naive L2SP (autograd loop)")):
        extra = statistics.median(t - b for t, b in zip(times[name], times["plain"]))  # paired per round
        print(f"{label:32s}{med[name] * 1e3:8.1f} ms   {med[name] / base:.3f}x   "
              f"L2SP cost {extra * 1e3:+.1f} ms = {extra / base:+.1%} of a plain step")
    for name, label in (("fused_alone", "fused pass alone"), ("naive_alone", "naive penalty + backward alone")):
        print(f"{label:32s}{med[name] * 1e3:8.1f} ms   = {med[name] / base:.1%} of a plain step")


if __name__ == "__main__":
    main()
