"""The mean, standard error and Student-t interval of repeated runs: final training over seeds reports them,
search.stats builds on them.

Plain numbers; scipy (a dependency) is imported only when an interval is asked for, so
any module may import this one without torch or scipy. With 2 to 5 seeds "+- 2 SE" is no
95 % interval (with 3 seeds it is about 82 %): intervals here use Student's t for n - 1
degrees of freedom and say their level.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LEVEL", "Estimate", "mean_se", "pack_hits", "t_quantile", "unpack_hits"]

LEVEL = 0.95  # the two-sided level of every interval the project prints


def pack_hits(hits: Sequence[bool]) -> str:
    """Per-image top-1 hits as ``"<n>:<base64 of the bits>"``: a few hundred bytes for a validation split.

    A confirmation run records it so that candidates can be compared image by image
    (`search.stats.image_seed_bootstrap`); `unpack_hits` reads it back.
    """
    import base64

    import numpy as np

    return f"{len(hits)}:{base64.b64encode(np.packbits(np.asarray(hits, dtype=bool)).tobytes()).decode()}"


def unpack_hits(packed: str) -> np.ndarray:
    """The per-image hits `pack_hits` wrote, as a bool array in the evaluation's image order."""
    import base64

    import numpy as np

    n, _, bits = packed.partition(":")
    return np.unpackbits(np.frombuffer(base64.b64decode(bits), dtype=np.uint8), count=int(n)).astype(bool)


def t_quantile(level: float, df: float) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (NaN when df < 1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not df >= 1:
        return math.nan
    from scipy.stats import t

    return float(t.ppf((1.0 + level) / 2.0, df))


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error over ``n`` values (``se`` is NaN when n < 2, ``mean`` when n = 0).

    ``df``: the degrees of freedom of ``se``; None means n - 1 (a pooled estimate has more).
    """

    mean: float
    se: float
    n: int
    df: float | None = None

    @property
    def dof(self) -> float:
        return float(self.n - 1) if self.df is None else float(self.df)

    def halfwidth(self, level: float = LEVEL) -> float:
        """Half the width of the two-sided Student-t interval at ``level`` (NaN without a standard error)."""
        if math.isnan(self.se):
            return math.nan
        return t_quantile(level, self.dof) * self.se


def mean_se(values: Sequence[float]) -> Estimate:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n))."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(n) if n > 1 else math.nan
    return Estimate(mean, se, n)
