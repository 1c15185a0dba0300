"""One training run: a search trial (`fit` with a report callback) and the final-training CLI.

Lifecycle of `fit`: seed, build the loaders and the model, snapshot the L2SP reference
weights, resume from ``last.pt`` if asked, then per epoch: reseed from (seed, epoch), train
(Adam/AdamW, StepLR per epoch, L2SP on the gradients), evaluate top-1/top-5 on
``cfg.data.eval_on``, checkpoint atomically, and call ``report(EpochReport)``. A report
returning True stops the run ("stopped"); a non-finite loss ends it before any update
("non_finite"). Because every epoch's randomness (shuffle order, augmentation, dropout)
depends only on (seed, epoch) -- each sample's augmentation is seeded from (seed, epoch,
index) by the loader's sampler, so persistent workers remember nothing -- a resumed run
ends with the same metrics as an uninterrupted one on CPU, bit for bit, with or without
loader workers.

    python -m fgmodel.train --config paper_best --task demo --epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from fgmodel import checkpoint
from fgmodel._io import write_atomic
from fgmodel._train_step import NonFiniteLoss, TrainStep, evaluate, make_optimizer
from fgmodel.checkpoint import CheckpointError
from fgmodel.cli import one_line, run_main
from fgmodel.config import RESUME_FREE_KEYS, RunConfig, dump_yaml, flatten, load_yaml, to_dict
from fgmodel.data import DEMO_PROFILE, build_loaders
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model
from fgmodel.stats import mean_se

__all__ = ["CheckpointError", "EpochReport", "FitResult", "final_config", "fit", "main"]

Status = Literal["completed", "stopped", "non_finite"]

# A run may also be continued for more (or fewer) epochs than it was started with.
_FREE_ON_RESUME = (*RESUME_FREE_KEYS, "optim.epochs")


@dataclass(frozen=True)
class EpochReport:
    """What the loop tells its caller after each epoch (accuracies are fractions in [0, 1])."""

    epoch: int  # 1-based
    epochs: int  # total planned
    train_loss: float
    val_top1: float
    val_top5: float  # top-k with k = min(5, num_classes)
    l2sp_penalty: float  # mean over the epoch's steps of lambda * sum (w - w0)^2
    images_per_sec: float  # training images per second of training time
    seconds: float  # the whole epoch, evaluation included
    skipped_images: int  # unreadable files replaced by other samples

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FitResult:
    status: Status
    reason: str
    history: list[EpochReport] = field(default_factory=list)
    best_top1: float = 0.0
    seconds: float = 0.0  # wall time of this call (a resumed run counts only its own part)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _seed_epoch(seed: int, epoch: int, loader: Any) -> None:
    """Make this epoch's shuffle, augmentation and dropout a function of (seed, epoch) only.

    The main process's RNGs (dropout, SCRA) are reseeded; the train loader's `EpochSampler`
    gets the epoch seed, from which it draws the order and one augmentation seed per
    sample that the dataset applies wherever the sample is loaded (worker or not).
    """
    s = checkpoint.epoch_seed(seed, epoch)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    set_epoch = getattr(getattr(loader, "sampler", None), "set_epoch", None)
    if set_epoch is not None:
        set_epoch(s)


def _check_resumable(path: Path, saved: dict[str, Any], cfg: RunConfig) -> None:
    """A checkpoint resumes only under the config that wrote it, but for `_FREE_ON_RESUME`."""
    was = flatten(saved)
    for key, value in flatten(to_dict(cfg)).items():
        if key not in _FREE_ON_RESUME and was.get(key) != value:
            raise CheckpointError(f"checkpoint {path} was written by another config "
                                  f"({key}: {was.get(key)!r} there, {value!r} now)")


def _write_metrics(out: Path, cfg: RunConfig, status: str, reason: str, history: list[EpochReport],
                   seconds: float) -> None:
    last = history[-1] if history else None
    best = max(history, key=lambda r: r.val_top1) if history else None
    metrics = {
        "status": status,
        "reason": reason,
        "eval_on": cfg.data.eval_on,
        "top1": last.val_top1 if last else None,
        "top5": last.val_top5 if last else None,
        "best_top1": best.val_top1 if best else None,
        "best_epoch": best.epoch if best else None,
        "epochs_run": len(history),
        "seconds": round(seconds, 3),
        "history": [r.to_dict() for r in history],
    }
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def fit(cfg: RunConfig, report: Callable[[EpochReport], bool | None] | None = None, *,
        output_dir: str | Path | None = None, resume: bool = False, device: str | None = None,
        progress: bool = False) -> FitResult:
    """Train `cfg` for ``cfg.optim.epochs`` epochs, reporting after each; see the module doc.

    output_dir: where ``last.pt``, ``best.pt``, ``metrics.json`` and ``config.yaml`` go.
    ``best.pt`` is the epoch with the highest ``eval_on`` top-1; with ``eval_on: test`` that
    is a test-set pick, so metrics.json's headline ``top1`` / ``top5`` are the last epoch's.
    resume: continue from ``output_dir/last.pt`` when it exists (else start afresh); the
    resumed run ends with the uninterrupted run's metrics and weights (bit for bit on CPU,
    whatever ``cfg.data.num_workers``), since every epoch's randomness is reseeded from
    (seed, epoch) and each sample's augmentation from (seed, epoch, index).
    ``cfg.model.compile`` and ``cfg.optim.micro_batch`` set how it runs (torch.compile, images
    per forward pass), not what it learns: a resume may change them.
    Raises for bad configs, missing data and bad checkpoints; never for a non-finite loss.
    """
    started = time.perf_counter()
    dev = _resolve_device(device)
    out = Path(output_dir) if output_dir is not None else None
    seed = cfg.optim.seed

    checkpoint.seed_everything(seed)
    loaders = build_loaders(cfg, pin_memory=dev.type == "cuda")  # raises on labels beyond the head
    checkpoint.seed_everything(seed)  # the initial weights depend on the seed alone
    model = build_model(cfg.model, cfg.num_classes, device=dev)
    model = model.to(memory_format=torch.channels_last)  # as the batches (fgmodel._train_step.to_device)
    l2sp = L2SP(model, cfg.optim.l2sp_lambda)  # reference = initial weights, also on resume
    optimizer = make_optimizer(model.parameters(), cfg.optim.optimizer, cfg.optim.lr, cfg.optim.weight_decay, dev)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.optim.step_size, gamma=cfg.optim.gamma)

    history: list[EpochReport] = []
    start_epoch = 0
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        last_path = out / "last.pt"
        if resume and last_path.exists():
            state = checkpoint.load(last_path, ("epoch", "model", "optimizer", "scheduler", "rng", "history", "config"))
            _check_resumable(last_path, state["config"], cfg)
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                history = [EpochReport(**r) for r in state["history"]][: cfg.optim.epochs]
            except (RuntimeError, KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"checkpoint {last_path} does not fit this model: {one_line(exc)}") from None
            checkpoint.set_rng_state(state["rng"])
            start_epoch = int(state["epoch"])
        dump_yaml(cfg, out / "config.yaml")

    forward = torch.compile(model) if cfg.model.compile else model
    step = TrainStep(model, optimizer, l2sp, micro_batch=cfg.optim.micro_batch, forward=forward)
    best_top1 = max((r.val_top1 for r in history), default=0.0)
    status: Status = "completed"
    reason = ""
    epochs = cfg.optim.epochs

    for epoch in range(start_epoch + 1, epochs + 1):
        epoch_start = time.perf_counter()
        _seed_epoch(seed, epoch, loaders.train)
        forward.train()  # also flips a torch.compile wrapper's own flag
        loss_sum, seen, skipped, steps = 0.0, 0, 0, 0
        penalty_sum = torch.zeros((), device=dev)
        # updated by hand (not wrapping the loader) so it stays open for the evaluation result
        bar = tqdm(total=len(loaders.train), desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not progress,
                   dynamic_ncols=True, file=sys.stderr)
        try:
            for images, labels, n_bad in loaders.train:
                loss, penalty = step(images, labels)
                steps += 1
                seen += len(labels)
                loss_sum += loss * len(labels)
                skipped += int(n_bad)
                if penalty is not None:
                    penalty_sum += penalty
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update()
        except NonFiniteLoss as exc:
            status, reason = "non_finite", f"{exc} at epoch {epoch}, step {steps + 1}"
            bar.close()
            break
        if seen == 0:
            raise ValueError("the training set is empty")
        train_seconds = time.perf_counter() - epoch_start
        scheduler.step()
        top1, top5 = evaluate(forward, loaders.eval, dev, k=min(5, cfg.num_classes))
        epoch_report = EpochReport(
            epoch=epoch, epochs=epochs, train_loss=loss_sum / seen, val_top1=top1, val_top5=top5,
            l2sp_penalty=penalty_sum.item() / steps, images_per_sec=seen / train_seconds,
            seconds=time.perf_counter() - epoch_start, skipped_images=skipped,
        )
        bar.set_postfix(loss=f"{epoch_report.train_loss:.4f}", **{f"{cfg.data.eval_on}_top1": f"{top1:.2%}"})
        bar.close()
        history.append(epoch_report)
        improved = top1 > best_top1 or len(history) == 1
        best_top1 = max(best_top1, top1)
        if out is not None:
            state_cfg = to_dict(cfg)
            checkpoint.save_atomic({
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": checkpoint.rng_state(),
                "history": [r.to_dict() for r in history], "config": state_cfg,
            }, out / "last.pt")
            if improved:
                checkpoint.save_atomic({"epoch": epoch, "model": model.state_dict(), "val_top1": top1,
                                        "config": state_cfg}, out / "best.pt")
            _write_metrics(out, cfg, "running", "", history, time.perf_counter() - started)
        if report is not None and report(epoch_report):
            if epoch < epochs:
                status, reason = "stopped", f"stopped by the report callback after epoch {epoch} of {epochs}"
            break

    seconds = time.perf_counter() - started
    if out is not None:
        _write_metrics(out, cfg, status, reason, history, seconds)
    return FitResult(status=status, reason=reason, history=history, best_top1=best_top1, seconds=seconds)


def final_config(cfg: RunConfig, *, task: str | None = None, data_root: str | None = None,
                 epochs: int | None = None, compile: bool | None = None,
                 micro_batch: int | None = None) -> tuple[RunConfig, list[str]]:
    """The config the CLI trains: evaluation on the test set, plus the command-line overrides.

    Moving a config to another task drops an explicit head size; moving it to ``demo``
    also applies `DEMO_PROFILE` (tiny backbone, small images, no download). Returns the
    config and the notes to print about what changed implicitly.
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
    return cfg.replace(**overrides), notes


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
