"""`fit`: one training run, reporting each epoch through a callback (a search trial or a final run).

Lifecycle: seed, build the loaders and the model, snapshot the L2SP reference
weights, resume from ``last.pt`` if asked, then per epoch: reseed from (seed, epoch), train
(Adam/AdamW, StepLR per epoch, L2SP on the gradients), evaluate top-1/top-5 on
``cfg.data.eval_on``, checkpoint atomically, and call ``report(EpochReport)``. A report
returning True stops the run ("stopped"); a non-finite loss ends it before any update
("non_finite"). Because every epoch's randomness (shuffle order, augmentation, dropout)
depends only on (seed, epoch) -- each sample's augmentation is seeded from (seed, epoch,
index) by the loader's sampler, so persistent workers remember nothing -- a resumed run
ends with the same metrics as an uninterrupted one on CPU, bit for bit, with or without
loader workers. The final-training CLI around it is `fgmodel.train`.

Using the GPU well: the loader hands uint8 batches, converted and normalised on the device
(`fgmodel._train_step.Normalize`); cuDNN autotunes (one batch shape: the train loader drops a
short last batch, the evaluation pads its own when compiled); ``model.compile`` (default: on
CUDA, `use_compile`) compiles the forward after clearing the compiler's caches, since Ray
runs trial after trial in one worker process. Each epoch reports ``data_wait``, the share of
its time spent waiting for the loaders: near 0 when they keep up, where more loader workers
or the pixel cache (``data.cache_dir``) no longer help the GPU.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from fgmodel import checkpoint
from fgmodel._io import write_atomic
from fgmodel._train_step import NonFiniteLoss, Normalize, TrainStep, evaluate, make_optimizer, tune_backend
from fgmodel.augment import input_stats
from fgmodel.checkpoint import CheckpointError
from fgmodel.cli import one_line
from fgmodel.config import RESUME_FREE_KEYS, RunConfig, dump_yaml, flatten, to_dict
from fgmodel.data import build_loaders, head_size
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model

__all__ = ["EpochReport", "FitResult", "Status", "fit"]

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
    # share of `seconds` spent blocked on the train and eval loaders (0 in histories saved before it was measured)
    data_wait: float = 0.0
    val_hits: str = ""  # per validation image, its top-1 hit (`fgmodel.stats.pack_hits`; "" in older histories)

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


def use_compile(setting: bool | None, device: torch.device) -> bool:
    """``model.compile``: True / False as set; None (the default) compiles on CUDA only.

    On a GPU compiling pays (timm reports 2.35x for ConvNeXt-V2 on an RTX 4090); on a CPU
    a cold compilation costs a minute or more and the step gains ~10% (see ``ModelConfig.compile``).
    """
    return device.type == "cuda" if setting is None else setting


def _compiled(model: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile(model)`` after ``torch._dynamo.reset()``: Ray reuses a worker process for
    trial after trial, and the previous trial's compiled graphs (holding its model) and
    recompile counts would otherwise carry over into this one, which could hit the recompile
    limit and silently run eager. Inductor's on-disk cache survives the reset: a later trial
    with the same graphs (architecture, sizes) compiles in seconds (atto on CPU: ~90 s cold, ~6 s)."""
    import torch._dynamo

    torch._dynamo.reset()
    return torch.compile(model)


class _Waited:
    """Iterates `loader`, adding the seconds spent in its ``iter()`` and ``next()`` to `seconds`."""

    def __init__(self, loader: Iterable):
        self.loader = loader
        self.seconds = 0.0

    def __iter__(self) -> Iterator:
        start = time.perf_counter()
        items = iter(self.loader)
        while True:
            try:
                item = next(items)
            except StopIteration:
                self.seconds += time.perf_counter() - start
                return
            self.seconds += time.perf_counter() - start
            yield item
            start = time.perf_counter()


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
    device: where it trains (default: CUDA when available); ``model.compile: null`` follows it.
    Raises for bad configs, missing data and bad checkpoints; never for a non-finite loss.
    """
    started = time.perf_counter()
    dev = _resolve_device(device)
    out = Path(output_dir) if output_dir is not None else None
    seed = cfg.optim.seed

    compile_model = use_compile(cfg.model.compile, dev)
    tune_backend(dev)
    checkpoint.seed_everything(seed)
    loaders = build_loaders(cfg, pin_memory=dev.type == "cuda")  # raises on labels beyond the head
    checkpoint.seed_everything(seed)  # the initial weights depend on the seed alone
    num_classes = head_size(cfg)
    model = build_model(cfg.model, num_classes, device=dev, data_root=cfg.data.root)  # "demo": weights made there
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

    forward = _compiled(model) if compile_model else model
    normalize = Normalize(*input_stats(cfg), device=dev)
    step = TrainStep(model, optimizer, l2sp, micro_batch=cfg.optim.micro_batch, forward=forward, prepare=normalize)
    pad_eval_to = loaders.eval.batch_size if compile_model else None  # one compiled evaluation shape
    best_top1 = max((r.val_top1 for r in history), default=0.0)
    status: Status = "completed"
    reason = ""
    epochs = cfg.optim.epochs

    for epoch in range(start_epoch + 1, epochs + 1):
        epoch_start = time.perf_counter()
        _seed_epoch(seed, epoch, loaders.train)
        forward.train()  # also flips a torch.compile wrapper's own flag
        loss_sum, seen, skipped, steps = 0.0, 0, 0, 0
        train_batches, eval_batches = _Waited(loaders.train), _Waited(loaders.eval)
        penalty_sum = torch.zeros((), device=dev)
        # updated by hand (not wrapping the loader) so it stays open for the evaluation result
        bar = tqdm(total=len(loaders.train), desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not progress,
                   dynamic_ncols=True, file=sys.stderr)
        try:
            for images, labels, n_bad in train_batches:
                loss, penalty = step(images, labels)
                steps += 1
                seen += len(labels)
                loss_sum += loss * len(labels)
                skipped += int(n_bad)
                if penalty is not None:
                    penalty_sum += penalty
                wait = train_batches.seconds / (time.perf_counter() - epoch_start)
                bar.set_postfix(loss=f"{loss:.4f}", data_wait=f"{wait:.0%}", refresh=False)
                bar.update()
        except NonFiniteLoss as exc:
            status, reason = "non_finite", f"{exc} at epoch {epoch}, step {steps + 1}"
            bar.close()
            break
        if seen == 0:
            raise ValueError("the training set is empty")
        train_seconds = time.perf_counter() - epoch_start
        scheduler.step()
        top1, top5, hits = evaluate(forward, eval_batches, dev, k=min(5, num_classes), prepare=normalize,
                                    pad_to=pad_eval_to)
        epoch_seconds = time.perf_counter() - epoch_start
        epoch_report = EpochReport(
            epoch=epoch, epochs=epochs, train_loss=loss_sum / seen, val_top1=top1, val_top5=top5,
            l2sp_penalty=penalty_sum.item() / steps, images_per_sec=seen / train_seconds,
            seconds=epoch_seconds, skipped_images=skipped,
            data_wait=(train_batches.seconds + eval_batches.seconds) / epoch_seconds, val_hits=hits,
        )
        bar.set_postfix(loss=f"{epoch_report.train_loss:.4f}", data_wait=f"{epoch_report.data_wait:.0%}",
                        **{f"{cfg.data.eval_on}_top1": f"{top1:.2%}"})
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
