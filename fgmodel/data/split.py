"""The search's validation split: stratified, seeded, and the same in every process.

Nothing here depends on the input order, on `hash()` (randomised per process) or on global
RNG state: each class's members are sorted by path and shuffled by a generator seeded
with (seed, label), so a Ray worker and the driver carve the very same split.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from fgmodel.data._registry import Sample


def val_count(n: int, fraction: float) -> int:
    """Members of an n-image class held out: rounded, but at least one and never all."""
    if n < 2:
        return 0
    return min(max(int(round(n * fraction)), 1), n - 1)


def split_train_val(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, val) with `val_fraction` of each class in val; both keep the input order."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_class[int(s.label)].append(i)
    held: set[int] = set()
    for label in sorted(by_class):
        members = sorted(by_class[label], key=lambda i: (samples[i].path, i))
        rng = np.random.default_rng([seed % 2**63, label])
        order = rng.permutation(len(members))
        held.update(members[j] for j in order[: val_count(len(members), val_fraction)])
    train = [s for i, s in enumerate(samples) if i not in held]
    val = [s for i, s in enumerate(samples) if i in held]
    return train, val
