"""What the driver settles before any trial runs: the data is there, the weights, the FLOPs.

Each check fails with one line before Ray starts a trial, so a missing dataset or an
unreachable weights file costs seconds, not a GPU slot. Everything here imports torch
and timm lazily: the light commands (report, export) never pay for them.
"""

from __future__ import annotations

from collections.abc import Callable

from fgmodel.config import RunConfig

Measure = Callable[[RunConfig], tuple[float, int]]


def check_data(base: RunConfig) -> None:
    """Fail before Ray starts when the dataset is missing; the demo is generated here, once."""
    from fgmodel.data import load_task

    load_task(base.data.task, base.data.root)


def resolve_pretrained(base: RunConfig, log: Callable[[str], None] = print) -> tuple[RunConfig, str]:
    """Settle the pretrained weights once, in the driver, so every trial starts alike.

    Returns the base config every trial gets and the weights' effective source. With
    ``model.pretrained: none`` this costs nothing. Otherwise the model is built once on
    the CPU: weights that load are kept (and a trial that cannot load them later fails
    loudly rather than training from random init); weights that cannot be had end the
    run (`PretrainedUnavailable`, one line) unless ``pretrained_fallback``, which prints one
    warning here and sets ``model.pretrained: none`` for the whole study.
    """
    if base.model.pretrained == "none":
        return base, "none"
    from fgmodel.model import PretrainedUnavailable, build_model

    strict = base.replace(**{"model.pretrained_fallback": False})
    try:
        build_model(strict.model, strict.num_classes, device="cpu")
    except PretrainedUnavailable as exc:
        if not base.model.pretrained_fallback:
            raise
        log(f"warning: {exc}; every trial trains from random init (pretrained_fallback)")
        return base.replace(**{"model.pretrained": "none"}), f"none (fallback: {base.model.pretrained} unavailable)"
    return strict, base.model.pretrained


def baseline_gflops(base: RunConfig, image_size: int) -> float:
    """GFLOPs of the budget's reference: the base backbone at ``image_size``, no SCRA."""
    from fgmodel import flops

    return float(flops.baseline(base.model, base.num_classes, image_size=image_size).gflops)


def measure_fn() -> Measure:
    """``cfg -> (GFLOPs, params)`` on the meta device, cached per architecture in fgmodel.flops."""
    from fgmodel import flops

    def measure(cfg: RunConfig) -> tuple[float, int]:
        cost = flops.measure(cfg.model, cfg.num_classes, cfg.data.image_size)
        return float(cost.gflops), int(cost.params)

    return measure
