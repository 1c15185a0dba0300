"""The default space: what the paper tuned by hand, as ranges around its values.

Augmentation strengths and probabilities, dropout, L2SP (off or a log-uniform lambda),
SCRA after any subset of the four stages (kernel size only when at least one), the input
resolution (a few sizes around the base one: the knob that trades accuracy for FLOPs in
both directions, so the front has more than one point) and the learning rate,
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


def image_sizes(base_size: int) -> list[int]:
    """Sizes around the base, multiples of 8 (ConvNeXt downsamples by 32 in all)."""
    return sorted({max(8 * round(base_size * f / 8), 16) for f in IMAGE_SIZE_FACTORS})


def paper_rows(base: RunConfig) -> list[tuple[str, dict[str, Any]]]:
    """Table 1, cumulative: baseline, + augmentation, + L2SP, + dropout, + SCRA (1x1 after stage 0)."""
    baseline: dict[str, Any] = {name: 0.0 for name in PAPER_AUGMENT}
    baseline |= {"dropout": 0.0, "l2sp": "off", "lr": base.optim.lr, "image_size": base.data.image_size}
    baseline |= {f"scra_after_{stage}": False for stage in range(NUM_STAGES)}
    augment = baseline | PAPER_AUGMENT
    l2sp = augment | {"l2sp": "on", "l2sp_lambda": PAPER_L2SP_LAMBDA}
    dropout = l2sp | {"dropout": PAPER_DROPOUT}
    scra = dropout | {f"scra_after_{PAPER_SCRA_STAGE}": True, "scra_kernel": 1}
    return [
        ("baseline", baseline),
        ("+ augmentation", augment),
        ("+ L2SP", l2sp),
        ("+ dropout", dropout),
        ("+ SCRA", scra),
    ]


@register("default", paper_rows=paper_rows)
def space(trial: optuna.trial.BaseTrial, base: RunConfig) -> RunConfig:
    """Suggest one config; fast (no FLOPs counting here: the runner measures it after)."""
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
    image_size = int(trial.suggest_categorical("image_size", image_sizes(base.data.image_size)))
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
