"""The mean and standard error of repeated runs: final training over seeds reports them, search.stats builds on them.

Plain numbers and the standard library only, so any module may import it without torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Estimate", "mean_se"]


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error over ``n`` values (``se`` is NaN when n < 2, ``mean`` when n = 0)."""

    mean: float
    se: float
    n: int


def mean_se(values: Sequence[float]) -> Estimate:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n))."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(n) if n > 1 else math.nan
    return Estimate(mean, se, n)
