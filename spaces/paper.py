"""The `paper` space: only the six rows of the paper's Table 1, as one categorical param.

A quick way to reproduce the ablation as a study (each row is one trial), sharing the
`default` space's definition of every row so the two can never disagree.
"""

from __future__ import annotations

from typing import Any

import optuna

from fgmodel.config import RunConfig
from spaces import default
from spaces._registry import register

PARAM = "table1_row"


def paper_rows(base: RunConfig) -> list[tuple[str, dict[str, Any]]]:
    return [(label, {PARAM: label}) for label, _ in default.paper_rows(base)]


@register("paper", paper_rows=paper_rows)
def space(trial: optuna.trial.BaseTrial, base: RunConfig, *, budget: float | None = None) -> RunConfig:
    rows = dict(default.paper_rows(base))
    label = trial.suggest_categorical(PARAM, list(rows))
    return default.space(optuna.trial.FixedTrial(rows[label]), base)
