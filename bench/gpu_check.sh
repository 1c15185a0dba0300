#!/usr/bin/env bash
# One prepared check for a CUDA machine (about 5-7 minutes, most of it compilation):
# 1. throughput: trains convnextv2_large (SCRA after stage 0, dropout, L2SP: the paper's best
#    row) at 224 px on random uint8 images through fgmodel's own TrainStep, as fit runs it
#    (normalised on the device, bf16 autocast + channels_last, cuDNN autotuning, out of memory
#    -> smaller micro-batches with accumulation), eager and then torch.compile'd, and prints
#    images/s of each, the compilation's time, peak GPU memory, and the achieved fraction of
#    this GPU's bf16 matmul rate measured in the same run (3 x forward FLOPs from fgmodel.flops);
# 2. fit: two short fits of the demo task in one process (as a Ray worker runs trial after
#    trial), compiled (model.compile: null = on CUDA), printing each epoch's images/s and
#    data_wait and the graphs each fit compiled (2 expected: train and eval, none recompiled
#    for a short last batch, the second fit not slowed by the first's caches).
#
#   bash bench/gpu_check.sh                 # on the GPU machine
#   bash bench/gpu_check.sh --dry-run       # tiny CPU run of the same code (dynamo's eager backend), anywhere
#   options: --batch-size N --micro-batch N --steps N --no-compile --no-fit --fit-workers N
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" - "$@" <<'PYEOF'
import argparse
import copy
import functools
import sys
import tempfile
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
p.add_argument("--no-compile", action="store_true", help="measure the eager step only; fit eager")
p.add_argument("--no-fit", action="store_true", help="skip the two demo fits")
p.add_argument("--fit-workers", type=int, default=8, help="loader workers of the demo fits")
p.add_argument("--time-limit", type=float, default=120.0, help="stop each timed loop after this many seconds")
args = p.parse_args()

if args.dry_run:
    device = torch.device("cpu")
    args.backbone, args.image_size, args.batch_size, args.warmup, args.steps = "convnextv2_atto", 32, 8, 1, 2
    args.fit_workers = 0
    matmul_n, matmul_dtype = 256, torch.float32
    # exercise the compiled code paths in seconds: dynamo's tracing and guards, no inductor
    torch.compile = functools.partial(torch.compile, backend="eager")
elif not torch.cuda.is_available():
    print("gpu_check: no CUDA device on this machine; nothing to measure "
          "(bash bench/gpu_check.sh --dry-run exercises the script on CPU)")
    sys.exit(0)
else:
    device = torch.device("cuda")
    matmul_n, matmul_dtype = 8192, torch.bfloat16

import torch._dynamo
from torch._dynamo.utils import counters

from fgmodel import flops
from fgmodel._train_step import Normalize, TrainStep, make_optimizer, tune_backend
from fgmodel.augment import norm_stats
from fgmodel.config import ModelConfig
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model

started = time.perf_counter()
tune_backend(device)


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
model = build_model(cfg, num_classes, device=device).to(memory_format=torch.channels_last)
model.train()
initial = copy.deepcopy(model.state_dict())
normalize = Normalize(*norm_stats(args.backbone), device=device)
g = torch.Generator().manual_seed(0)
x = torch.randint(0, 256, (args.batch_size, 3, args.image_size, args.image_size), dtype=torch.uint8, generator=g)
x = x.contiguous(memory_format=torch.channels_last).to(device)  # the loader's layout
y = torch.randint(0, num_classes, (args.batch_size,), generator=g).to(device)
gflops = flops.measure(cfg, num_classes, args.image_size).gflops


def measure(compiled):
    """(images/s, seconds of compilation + warm-up, micro-batch, steps) of fit's step, from the same weights."""
    model.load_state_dict(initial)
    torch._dynamo.reset()
    forward = torch.compile(model) if compiled else model
    step = TrainStep(model, make_optimizer(model.parameters(), "adam", 1e-4, 1e-5, device), L2SP(model, 0.01),
                     micro_batch=args.micro_batch, forward=forward, prepare=normalize)
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step(x, y)  # an out-of-memory first step settles the micro-batch here
    sync()
    warmup = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()  # steady state, not the failed attempts
    done = 0
    t0 = time.perf_counter()
    while done < args.steps and time.perf_counter() - t0 < args.time_limit:
        step(x, y)
        done += 1
    sync()
    return done * args.batch_size / (time.perf_counter() - t0), warmup, step.micro_batch, done


name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (dry run)"
print(f"device              : {name}, torch {torch.__version__}")
print(f"model               : {args.backbone} + SCRA@0, {args.image_size}px, {gflops:.2f} GFLOPs/img forward, "
      f"uint8 input normalised on the device, "
      f"{'bf16 autocast + channels_last' if device.type == 'cuda' else 'float32 + channels_last'}")
print(f"matmul rate         : {peak_matmul / 1e12:.3g} TFLOP/s ({matmul_n}^3 {str(matmul_dtype).removeprefix('torch.')})")
rates = {}
for compiled in (False,) if args.no_compile else (False, True):
    label = "compiled" if compiled else "eager"
    rate, warmup, micro, done = measure(compiled)
    rates[label] = rate
    peak_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    model_rate = 3 * gflops * 1e9 * rate
    print(f"{label:<9} batch {args.batch_size} (micro-batch {micro or args.batch_size}): {rate:8.1f} images/s "
          f"over {done} steps, {model_rate / peak_matmul:.1%} of matmul, peak {peak_mem:.1f} GiB, "
          f"{'compile + ' if compiled else ''}{args.warmup} warm-up steps {warmup:.0f} s")
if "compiled" in rates:
    print(f"compiled / eager    : {rates['compiled'] / rates['eager']:.2f}")
del model, initial
if device.type == "cuda":
    torch.cuda.empty_cache()

if not args.no_fit:
    from fgmodel.config import RunConfig
    from fgmodel.data import DEMO_PROFILE
    from fgmodel.fit import fit

    if args.dry_run:  # a quarter of the demo set (as the tests' small_demo_root), at 32 px
        from fgmodel.data import demo

        demo.PER_CLASS, demo.TRAIN_PER_CLASS = 20, 16
    with tempfile.TemporaryDirectory() as root:
        run = RunConfig().replace(**{**DEMO_PROFILE, **{
            "data.root": root, "data.num_workers": args.fit_workers, "optim.epochs": 2, "model.pretrained": "none",
            "data.image_size": 32 if args.dry_run else 64,
            "optim.batch_size": 64, "augment.hflip_p": 0.5, "augment.rotation_deg": 15.0, "augment.rotation_p": 0.25,
            "augment.brightness": 0.25, "augment.hue": 0.05, "augment.jitter_p": 1.0,
            # null: compiled on CUDA; the dry run compiles too (with the eager backend)
            "model.compile": False if args.no_compile else True if args.dry_run else None,
        }})
        print(f"fit                 : demo, {run.model.backbone} at {run.data.image_size}px, batch "
              f"{run.optim.batch_size}, {args.fit_workers} loader workers, paper augmentation, 2 epochs, twice")
        for attempt in (1, 2):
            graphs = counters["stats"]["unique_graphs"]
            t0 = time.perf_counter()
            result = fit(run, device=str(device))
            epochs = ", ".join(f"epoch {r.epoch}: {r.seconds:.1f} s, {r.images_per_sec:.0f} img/s, "
                               f"data_wait {r.data_wait:.0%}" for r in result.history)
            print(f"fit {attempt}               : {result.status} in {time.perf_counter() - t0:.0f} s, "
                  f"{counters['stats']['unique_graphs'] - graphs} graphs compiled; {epochs}")
print(f"total time          : {time.perf_counter() - started:.0f} s")
PYEOF
