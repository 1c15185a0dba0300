"""The learning-rate schedule's own answer to "how many epochs are worth training?".

The paper's StepLR (Adam 1e-4, x0.1 every 5 epochs, 30 epochs) is at 1e-6 from epoch 10
and at or below 1e-7 from epoch 15. Adam moves a weight by about ``lr`` per step, so once
the rate has fallen to a small fraction of its first value for every remaining epoch,
those epochs can no longer change what a run is worth, yet they cost as much GPU time
as the first ones. `useful_epochs` says where that point is; the search trains up to it
(a trial that reaches it is COMPLETE) and final training does so only when asked.
"""

from __future__ import annotations

import math

from fgmodel.config import OptimConfig

# The rate at or below this fraction of the first one for every remaining epoch: the rest
# of the schedule is dead. 0.01 cuts the paper's schedule at epoch 10 of 30.
DEAD_LR_FRACTION = 0.01
_TOLERANCE = 1e-9  # 0.1 ** 2 is 0.010000000000000002: "at" the fraction means within rounding


def lr_factor(optim: OptimConfig, epoch: int) -> float:
    """The StepLR factor (lr / initial lr) during ``epoch``, counted from 0."""
    return optim.gamma ** (epoch // optim.step_size)


def useful_epochs(optim: OptimConfig, fraction: float | None = DEAD_LR_FRACTION) -> int:
    """The epochs before the rate stays at or below ``fraction`` of its first value (all when never, or None).

    StepLR only ever lowers the rate (gamma <= 1), so the first epoch at the fraction is
    the first of the dead tail. At least one epoch is always trained.
    """
    if fraction is None or optim.gamma >= 1.0:
        return optim.epochs
    if optim.gamma <= 0.0:
        steps = 1  # the rate is 0 after the first step
    else:
        steps = max(math.ceil(math.log(fraction) / math.log(optim.gamma) - _TOLERANCE), 1)
    return max(1, min(optim.epochs, steps * optim.step_size))
