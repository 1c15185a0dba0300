"""Hand-made records of a confirmation study (`search.confirm`), for the tests of what reads them."""

from __future__ import annotations

from collections.abc import Mapping

import optuna
from optuna.trial import create_trial


def add_runs(confirm: optuna.Study, number: int, role: str, gflops: float, top1: Mapping[int, float]) -> None:
    """A COMPLETE record per seed of search trial ``number`` re-trained: validation top-1 ``top1[seed]``."""
    for seed, value in top1.items():
        confirm.add_trial(create_trial(values=[value, gflops], user_attrs={
            "confirms": number, "seed": seed, "role": role, "gflops": gflops}))
