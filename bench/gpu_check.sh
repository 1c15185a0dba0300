#!/usr/bin/env bash
# One prepared check for a CUDA machine (finishes in well under 5 minutes):
# trains convnextv2_large (SCRA after stage 0, dropout, L2SP: the paper's best row) at
# 224 px on random tensors with bf16 autocast + channels_last at batch 128 through
# fgmodel's own TrainStep (out of memory -> smaller micro-batches with accumulation),
# and prints images/s, peak GPU memory, and the achieved fraction of this GPU's bf16
# matmul rate measured in the same run (3 x forward FLOPs from fgmodel.flops).
#
#   bash bench/gpu_check.sh                 # on the GPU machine
#   bash bench/gpu_check.sh --dry-run       # tiny CPU run of the same code, to test it anywhere
#   options: --batch-size N --micro-batch N --steps N --compile
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" - "$@" <<'PYEOF'
import argparse
import sys
import time

import torch

p = argparse.ArgumentParser(prog="bench/gpu_check.sh")
p.add_argument("--dry-run", action="store_true", help="tiny model and sizes on CPU (tests the script)")
p.add_argument("--backbone", default="convnextv2_large")
p.add_argument("--image-size", type=int, default=224)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--micro-batch", type=int, default=None, help="start below the batch (default: the whole batch)")
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--steps", type=int, default=30)
p.add_argument("--compile", action="store_true", help="torch.compile the forward (adds compile time)")
p.add_argument("--time-limit", type=float, default=200.0, help="stop the timed loop after this many seconds")
args = p.parse_args()

if args.dry_run:
    device = torch.device("cpu")
    args.backbone, args.image_size, args.batch_size, args.warmup, args.steps = "convnextv2_atto", 32, 8, 1, 2
    matmul_n, matmul_dtype = 256, torch.float32
elif not torch.cuda.is_available():
    print("gpu_check: no CUDA device on this machine; nothing to measure "
          "(bash bench/gpu_check.sh --dry-run exercises the script on CPU)")
    sys.exit(0)
else:
    device = torch.device("cuda")
    matmul_n, matmul_dtype = 8192, torch.bfloat16
    torch.backends.cudnn.benchmark = True

from fgmodel import flops
from fgmodel._train_step import TrainStep, make_optimizer
from fgmodel.config import ModelConfig
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model

started = time.perf_counter()


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(n, dtype, iters):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync()
    return 2 * n**3 * iters / (time.perf_counter() - t0)


peak_matmul = matmul_rate(matmul_n, matmul_dtype, iters=50 if device.type == "cuda" else 3)

num_classes = 200
cfg = ModelConfig(backbone=args.backbone, num_classes=num_classes, scra_stages=(0,), dropout=0.45)
torch.manual_seed(0)
model = build_model(cfg, num_classes, device=device)
if device.type == "cuda":
    model = model.to(memory_format=torch.channels_last)
model.train()
forward = torch.compile(model) if args.compile else model
step = TrainStep(model, make_optimizer(model.parameters(), "adam", 1e-4, 1e-5, device), L2SP(model, 0.01),
                 micro_batch=args.micro_batch, forward=forward)
fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device).contiguous(memory_format=fmt)
y = torch.randint(0, num_classes, (args.batch_size,), device=device)

for _ in range(args.warmup):
    step(x, y)  # an out-of-memory first step settles the micro-batch here
sync()
if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats()  # steady state, not the failed attempts
done = 0
t0 = time.perf_counter()
while done < args.steps and time.perf_counter() - t0 < args.time_limit:
    step(x, y)
    done += 1
sync()
elapsed = time.perf_counter() - t0

images_per_sec = done * args.batch_size / elapsed
gflops = flops.measure(cfg, num_classes, args.image_size).gflops
model_rate = 3 * gflops * 1e9 * images_per_sec
name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (dry run)"
peak_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
print(f"device              : {name}, torch {torch.__version__}")
print(f"model               : {args.backbone} + SCRA@0, {args.image_size}px, {gflops:.2f} GFLOPs/img forward, "
      f"{'bf16 autocast + channels_last' if device.type == 'cuda' else 'float32'}"
      f"{', torch.compile' if args.compile else ''}")
print(f"batch               : {args.batch_size} (micro-batch {step.micro_batch or args.batch_size}), "
      f"{done} timed steps after {args.warmup} warm-up")
print(f"throughput          : {images_per_sec:.1f} images/s ({elapsed / done * 1000:.0f} ms/step)")
print(f"peak GPU memory     : {peak_mem:.1f} GiB")
print(f"matmul rate         : {peak_matmul / 1e12:.3g} TFLOP/s ({matmul_n}^3 {str(matmul_dtype).removeprefix('torch.')})")
print(f"model rate          : {model_rate / 1e12:.3g} TFLOP/s (3 x forward FLOPs x images/s)")
print(f"fraction of matmul  : {model_rate / peak_matmul:.1%}")
print(f"total time          : {time.perf_counter() - started:.0f} s")
PYEOF
