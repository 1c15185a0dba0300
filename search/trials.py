"""What a search trial's record says about it: does it count toward ``trials``, was it cut short, its GFLOPs.

One rule each, so the searcher (how many remain to train), the progress line, the run's
summary, the report and the confirmation cannot disagree on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from optuna.trial import FrozenTrial, TrialState

from search import attrs


def cut_short(trial: FrozenTrial) -> bool:
    """Failed by the driver (it died, or Ctrl-C), not by the search: queued again, runs again on resume."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get(attrs.REASON) in attrs.CUT_SHORT


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial counts toward the requested number of trials: handed to Ray to train, not cut short.

    Over-budget proposals and configs that failed to build never train; a trial the
    driver cut short is queued again and counts when it runs.
    """
    user = trial.user_attrs
    return (
        trial.state != TrialState.WAITING
        and not user.get(attrs.OVER_BUDGET)
        and user.get(attrs.REASON) != attrs.CONFIG_ERROR
        and not cut_short(trial)
    )


def count_counted(trials: Iterable[FrozenTrial]) -> int:
    return sum(1 for t in trials if counted(t))


def gflops_of(trial: FrozenTrial) -> float:
    """A COMPLETE trial's second objective, else the GFLOPs the searcher measured (NaN when never measured)."""
    if trial.state == TrialState.COMPLETE and trial.values:
        return float(trial.values[1])
    return float(trial.user_attrs.get(attrs.GFLOPS, math.nan))
