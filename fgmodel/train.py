"""Final training from the command line: one run, or one per seed with their mean and standard error.

The config is an exported search config or a preset; the run trains on all of the
training set and evaluates on the test set each epoch (`final_config`), through
`fgmodel.fit.fit`.

    python -m fgmodel.train --config paper_best --task demo --epochs 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fgmodel._io import write_atomic
from fgmodel.cli import run_main
from fgmodel.config import RunConfig, load_yaml
from fgmodel.data import DEMO_PROFILE, task_classes
from fgmodel.fit import fit
from fgmodel.stats import mean_se

__all__ = ["final_config", "main"]


def final_config(cfg: RunConfig, *, task: str | None = None, data_root: str | None = None,
                 epochs: int | None = None, compile: bool | None = None,
                 micro_batch: int | None = None) -> tuple[RunConfig, list[str]]:
    """The config the CLI trains: evaluation on the test set, plus the command-line overrides.

    Moving a config to another task drops an explicit head size; moving it to ``demo``
    also applies `DEMO_PROFILE` (tiny backbone, small images, no download). Returns the
    config and the notes to print about what changed implicitly; a task that is not
    trainable raises `ConfigError` (``data.task``).
    """
    overrides: dict[str, Any] = {"data.eval_on": "test"}
    notes = []
    if task is not None and task != cfg.data.task:
        overrides["data.task"] = task
        if cfg.model.num_classes is not None:
            overrides["model.num_classes"] = None
        if task == "demo":
            overrides.update(DEMO_PROFILE)
            notes.append("--task demo: applying the CPU demo profile ("
                         + ", ".join(f"{k}={v}" for k, v in DEMO_PROFILE.items()) + ")")
    if data_root is not None:
        overrides["data.root"] = data_root
    if epochs is not None:
        overrides["optim.epochs"] = epochs
    if compile is not None:
        overrides["model.compile"] = compile
    if micro_batch is not None:
        overrides["optim.micro_batch"] = micro_batch
    config = cfg.replace(**overrides)
    task_classes(config.data.task)  # a task no run may train on: one ConfigError line before any output
    return config, notes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fgmodel.train",
        description="Final training: the whole training set, evaluated on the test set each epoch.")
    p.add_argument("--config", required=True, help="a run config YAML (an exported search config) or a preset name")
    p.add_argument("--task", help="train on this task instead of the config's (demo: the CPU demo profile)")
    p.add_argument("--data-root", help="dataset folder (default: the config's data.root)")
    p.add_argument("--epochs", type=int, help="override optim.epochs")
    p.add_argument("--output", help="output folder (default: runs/<task>-<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/last.pt")
    p.add_argument("--device", help="cuda, cpu, cuda:1 ... (default: cuda when available)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the forward (sets model.compile; default: the config's)")
    p.add_argument("--micro-batch", type=int, metavar="N",
                   help="at most N images per forward pass, gradients accumulated (sets optim.micro_batch)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="train N times, optim.seed = the config's + 0 .. N-1, each in <output>/seed_<seed>/; "
                        "metrics.json gets the mean and standard error of test top-1 (default: 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_main(lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    cfg, notes = final_config(load_yaml(args.config), task=args.task, data_root=args.data_root, epochs=args.epochs,
                              compile=args.compile, micro_batch=args.micro_batch)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.resume and not args.output:
        raise ValueError("--resume needs --output, the folder of the run to continue")
    resumable = Path(args.output or ".") / ("last.pt" if args.seeds == 1 else "")
    if args.resume and not resumable.exists():
        raise FileNotFoundError(f"nothing to resume: {resumable} does not exist")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cfg.data.num_workers > cpus:
        notes.append(f"data.num_workers {cfg.data.num_workers} -> {cpus} (the CPUs this process may use)")
        cfg = cfg.replace(**{"data.num_workers": cpus})
    for note in notes:
        print(note)
    out = Path(args.output or f"runs/{cfg.data.task}-{datetime.now():%Y%m%d-%H%M%S}")
    if args.seeds > 1:
        return _train_seeds(cfg, out, args)
    try:
        result = fit(cfg, output_dir=out, resume=args.resume, device=args.device, progress=True)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"continue with --resume --output {out}") from None
    if result.status == "non_finite":
        print(f"error: {result.reason}", file=sys.stderr)
        return 1
    if result.history:
        last = result.history[-1]
        best = max(result.history, key=lambda r: r.val_top1)
        # the result is the last epoch; best.pt is chosen on the test set, so it is only a note
        print(f"test top-1 {last.val_top1:.2%}  top-5 {last.val_top5:.2%} (epoch {last.epoch}, the result)  "
              f"[best epoch on test: {best.epoch}, {best.val_top1:.2%}; not a selection criterion]  "
              f"({len(result.history)} epochs, {result.seconds:.0f} s) -> {out / 'metrics.json'}")
    return 0


def _train_seeds(cfg: RunConfig, out: Path, args: argparse.Namespace) -> int:
    """``--seeds N``: one run per seed, then the mean and standard error of test top-1 (what a paper reports).

    A search's single best run overstates; the spread over seeds says how much of a
    difference is training noise. ``--resume`` continues every seed's folder (a finished
    one costs nothing). The headline is each run's last epoch, as for one run.
    """
    seeds = [cfg.optim.seed + i for i in range(args.seeds)]
    runs = []
    for seed in seeds:
        folder = out / f"seed_{seed}"
        print(f"seed {seed} ({len(runs) + 1} of {len(seeds)}) -> {folder}")
        try:
            result = fit(cfg.replace(**{"optim.seed": seed}), output_dir=folder, resume=args.resume,
                         device=args.device, progress=True)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"continue with --resume --output {out} --seeds {args.seeds}") from None
        last = result.history[-1] if result.history else None
        runs.append({"seed": seed, "dir": folder.name, "status": result.status, "reason": result.reason,
                     "top1": last.val_top1 if last else None, "top5": last.val_top5 if last else None,
                     "epochs_run": len(result.history)})
    done = [r for r in runs if r["status"] == "completed" and r["top1"] is not None]
    top1, top5 = mean_se([r["top1"] for r in done]), mean_se([r["top5"] for r in done])
    metrics = {"eval_on": cfg.data.eval_on, "seeds": seeds, "completed": len(done),
               **{k: None if math.isnan(v) else v for k, v in  # JSON has no NaN: fewer than 2 seeds -> null
                  {"top1_mean": top1.mean, "top1_se": top1.se, "top5_mean": top5.mean, "top5_se": top5.se}.items()},
               "runs": runs}
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    each = ", ".join(f"{r['top1']:.2%}" if r["top1"] is not None else r["status"] for r in runs)
    se = "" if math.isnan(top1.se) else f" +- {top1.se:.2%}"
    print(f"test top-1 {top1.mean:.2%}{se}  top-5 {top5.mean:.2%} (mean +- standard error over {top1.n} seeds: "
          f"{each}) -> {out / 'metrics.json'}")
    failed = [r for r in runs if r["status"] != "completed"]
    for r in failed:
        print(f"error: seed {r['seed']}: {r['reason']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
