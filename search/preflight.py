"""What the driver settles before anything is written: the storage, the data, the weights, the FLOPs.

Each check fails with one line before the study is created (and before Ray starts a
trial), so a wrong flag costs seconds and running the same command again after fixing
it does not meet "study already exists". Everything here imports torch and timm lazily:
the light commands (report, export) never pay for them.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from fgmodel.config import ConfigError, RunConfig
from fgmodel.data import head_size
from search import study as study_mod
from search.spec import StudySpec
from search.studydir import sqlite_path, storage_for

Measure = Callable[[RunConfig], tuple[float, int]]


def check_storage(spec: StudySpec, url: str, resume: bool) -> None:
    """The storage opens (driver installed, server reachable) and the study's name is free, or there to
    resume. A SQLite file that does not exist yet is not created here."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        names: list[str] = []
    else:
        names = optuna.get_all_study_names(storage_for(url))
    study_mod.check_exists(spec, url, resume, names)


def default_pretrained(backbone: str) -> str:
    """timm's default pretrained tag for ``backbone`` (``convnextv2_base`` -> ``convnextv2_base.fcmae_ft_in22k_in1k``),
    read from timm's registry, offline. `ConfigError` when timm has no such model or no weights for it."""
    import timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(backbone):
        raise ConfigError("backbone", f"timm has no model {backbone!r}")
    cfg = get_pretrained_cfg(backbone)
    if cfg is None or not cfg.tag:
        raise ConfigError("backbone", f"timm has no pretrained weights for {backbone}; pass --pretrained none or PATH")
    return f"{backbone}.{cfg.tag}"


def check_data(base: RunConfig) -> int:
    """Fail before Ray starts when the dataset is missing; the demo is generated here, once.

    Returns the number of images ``base`` evaluates on (the search's validation split):
    the n of a single run's binomial standard error in the report.
    """
    from fgmodel.data.loader import task_splits

    return len(task_splits(base)[1])


def resolve_pretrained(base: RunConfig, log: Callable[[str], None] = print) -> tuple[RunConfig, str]:
    """Settle the pretrained weights once, in the driver, so every trial starts alike.

    Returns the base config every trial gets and the weights' effective source. With
    ``model.pretrained: none`` this costs nothing. ``demo`` names the demo's generated
    pretraining: it is made here if the data root lacks it (once, about 2 minutes on 2
    cores, never in a trial) and the config gets its file's path, so every trial, the
    confirmation and an exported config load that file. Otherwise the model is built once on
    the CPU: weights that load are kept (and a trial that cannot load them later fails
    loudly rather than training from random init); weights that cannot be had end the
    run (`PretrainedUnavailable`, one line) unless ``pretrained_fallback``, which prints one
    warning here and sets ``model.pretrained: none`` for the whole study.
    """
    if base.model.pretrained == "none":
        return base, "none"
    from fgmodel.model import DEMO_WEIGHTS, PretrainedUnavailable, build_model

    if base.model.pretrained == DEMO_WEIGHTS:
        from fgmodel import pretrain_demo

        path = pretrain_demo.ensure(base.data.root, base.model.backbone, say=log)
        base = base.replace(**{"model.pretrained": str(path)})

    strict = base.replace(**{"model.pretrained_fallback": False})
    try:
        build_model(strict.model, head_size(strict), device="cpu")
    except PretrainedUnavailable as exc:
        if not base.model.pretrained_fallback:
            raise
        log(f"warning: {exc}; every trial trains from random init (pretrained_fallback)")
        return base.replace(**{"model.pretrained": "none"}), f"none (fallback: {base.model.pretrained} unavailable)"
    return strict, base.model.pretrained


def baseline_gflops(base: RunConfig, image_size: int) -> float:
    """GFLOPs of the budget's reference: the base backbone at ``image_size``, no SCRA."""
    from fgmodel import flops

    return float(flops.baseline(base.model, head_size(base), image_size=image_size).gflops)


def measure_fn() -> Measure:
    """``cfg -> (GFLOPs, params)`` on the meta device, cached per architecture in fgmodel.flops."""
    from fgmodel import flops

    def measure(cfg: RunConfig) -> tuple[float, int]:
        cost = flops.measure(cfg.model, head_size(cfg), cfg.data.image_size)
        return float(cost.gflops), int(cost.params)

    return measure
