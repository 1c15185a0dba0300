"""The default space: what the paper tuned by hand, as ranges around its values.

Augmentation strengths and probabilities, dropout, L2SP (off or a log-uniform lambda),
SCRA after any subset of the four stages (kernel size only when at least one), the input
resolution (a few sizes around the base one, those whose plain model fits the FLOPs
budget: the knob that trades accuracy for FLOPs, so the front has more than one point)
and the learning rate,
log-uniform within a factor of 5 of the base config's, so one space serves
the paper recipe (1e-4) and the CPU demo (1e-3). Params are prefixed by group (``aug_``,
``l2sp``, ``scra_``) so they sort together in optuna-dashboard. Stepped floats are rounded
so configs read as 0.25, not 0.25000000000000006.
"""

from __future__ import annotations

from typing import Any

import optuna

from fgmodel.config import NUM_STAGES, RunConfig
from spaces._registry import register

LR_FACTOR = 5.0
SCRA_KERNELS = (1, 3)
IMAGE_SIZE_FACTORS = (0.75, 0.875, 1.0, 1.125)  # 224 -> 168, 192, 224, 256; 48 -> 32, 40, 48, 56
MIN_IMAGE_SIZE = 32  # ConvNeXt downsamples by 32: below that its last stage has no pixel
# ConvNeXt's feature maps: the stem's 4x4 patches, then a 2x downsample before each later stage.
STRIDES = (4, 8, 16, 32)

# The paper's values (section 3.3 and Table 1).
PAPER_AUGMENT = {
    "aug_rotation_deg": 15.0,
    "aug_rotation_p": 0.25,
    "aug_hflip_p": 0.25,
    "aug_brightness": 0.25,
    "aug_contrast": 0.25,
    "aug_saturation": 0.25,
    "aug_hue": 0.05,
    "aug_jitter_p": 1.0,
}
PAPER_DROPOUT = 0.45
PAPER_L2SP_LAMBDA = 0.01
PAPER_SCRA_STAGE = 0


def _stepped(trial: optuna.trial.BaseTrial, name: str, low: float, high: float, step: float) -> float:
    return round(float(trial.suggest_float(name, low, high, step=step)), 6)


def size_fits(size: int, base_size: int, budget: float) -> bool:
    """Whether the plain model (no SCRA) at ``size`` px surely costs at most ``1 + budget`` x the one at ``base_size``.

    A ConvNeXt's FLOPs are a sum of positive terms, one per stage (and the stem), each
    proportional to that stage's feature-map area ``(size // stride) ** 2``, plus a head
    that does not grow with the input. So when no stage's area grows by more than
    ``1 + budget``, neither does the sum: an upper bound, in microseconds, with no model
    built. It errs on the safe side: 232 px at 224 measures +1.3% (timm 1.0.31) but its
    stem's map grows 56 -> 58 (+7.3% area), so it is left out at +5%.
    """
    return all((size // s) ** 2 <= (1.0 + budget) * (base_size // s) ** 2 for s in STRIDES)


def image_sizes(base_size: int, budget: float | None = None) -> list[int]:
    """Sizes around the base, multiples of 8; with ``budget``, only those whose plain model fits it (`size_fits`).

    Without a budget (a replay of stored params) every size is offered, so any size a
    search drew replays; the base size always fits.
    """
    sizes = sorted({max(8 * round(base_size * f / 8), MIN_IMAGE_SIZE) for f in IMAGE_SIZE_FACTORS})
    return [s for s in sizes if budget is None or size_fits(s, base_size, budget)]


# Table 1's rows, in order, and the preset (fgmodel/presets/) that holds each.
PAPER_PRESETS = {
    "baseline": "paper_baseline",
    "+ augmentation": "paper_augment",
    "+ L2SP": "paper_l2sp",
    "+ dropout": "paper_dropout",
    "+ SCRA": "paper_scra",
    "+ SCRA - L2SP": "paper_best",
}


def paper_rows(base: RunConfig) -> list[tuple[str, dict[str, Any]]]:
    """Table 1: cumulative (baseline, + augmentation, + L2SP, + dropout, + SCRA 1x1 after stage 0),
    then the paper's best, the last row without L2SP."""
    baseline: dict[str, Any] = {name: 0.0 for name in PAPER_AUGMENT}
    baseline |= {"dropout": 0.0, "l2sp": "off", "lr": base.optim.lr, "image_size": base.data.image_size}
    baseline |= {f"scra_after_{stage}": False for stage in range(NUM_STAGES)}
    augment = baseline | PAPER_AUGMENT
    l2sp = augment | {"l2sp": "on", "l2sp_lambda": PAPER_L2SP_LAMBDA}
    dropout = l2sp | {"dropout": PAPER_DROPOUT}
    scra = dropout | {f"scra_after_{PAPER_SCRA_STAGE}": True, "scra_kernel": 1}
    best = {k: v for k, v in scra.items() if k != "l2sp_lambda"} | {"l2sp": "off"}
    rows = [baseline, augment, l2sp, dropout, scra, best]
    return list(zip(PAPER_PRESETS, rows, strict=True))


@register("default", paper_rows=paper_rows)
def space(trial: optuna.trial.BaseTrial, base: RunConfig, *, budget: float | None = None) -> RunConfig:
    """Suggest one config; fast (no FLOPs counting here: the searcher measures it after).

    With ``budget`` the image size is drawn only among the sizes whose plain model fits it.
    """
    augment = {
        "augment.rotation_deg": _stepped(trial, "aug_rotation_deg", 0.0, 30.0, 1.0),
        "augment.rotation_p": _stepped(trial, "aug_rotation_p", 0.0, 1.0, 0.05),
        "augment.hflip_p": _stepped(trial, "aug_hflip_p", 0.0, 1.0, 0.05),
        "augment.brightness": _stepped(trial, "aug_brightness", 0.0, 0.5, 0.05),
        "augment.contrast": _stepped(trial, "aug_contrast", 0.0, 0.5, 0.05),
        "augment.saturation": _stepped(trial, "aug_saturation", 0.0, 0.5, 0.05),
        "augment.hue": _stepped(trial, "aug_hue", 0.0, 0.1, 0.01),
        "augment.jitter_p": _stepped(trial, "aug_jitter_p", 0.0, 1.0, 0.05),
    }
    dropout = _stepped(trial, "dropout", 0.0, 0.6, 0.05)
    l2sp_lambda = 0.0
    if trial.suggest_categorical("l2sp", ["off", "on"]) == "on":
        l2sp_lambda = float(trial.suggest_float("l2sp_lambda", 1e-4, 1e-1, log=True))
    stages = tuple(
        stage
        for stage in range(NUM_STAGES)
        if trial.suggest_categorical(f"scra_after_{stage}", [False, True])
    )
    kernel = int(trial.suggest_categorical("scra_kernel", list(SCRA_KERNELS))) if stages else 1
    image_size = int(trial.suggest_categorical("image_size", image_sizes(base.data.image_size, budget)))
    lr = base.optim.lr
    lr = float(trial.suggest_float("lr", lr / LR_FACTOR, lr * LR_FACTOR, log=True))
    return base.replace(
        **augment,
        **{
            "model.dropout": dropout,
            "model.scra_stages": list(stages),
            "model.scra_kernel": kernel,
            "optim.l2sp_lambda": l2sp_lambda,
            "optim.lr": lr,
            "data.image_size": image_size,
        },
    )
