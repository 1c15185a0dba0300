"""The suite's own PostgreSQL server: it starts, takes Optuna's tables, and stops."""

from __future__ import annotations

import optuna
import pytest

from search.dashboard import name_objectives

pytestmark = pytest.mark.slow


def test_server_holds_an_optuna_study(postgres_url):
    assert postgres_url.startswith("postgresql+psycopg://fgsearch:")
    study = optuna.create_study(study_name="s", storage=postgres_url, directions=["maximize", "minimize"])
    name_objectives(study)
    trial = study.ask()
    study.tell(trial, [0.5, 1.25])
    again = optuna.load_study(study_name="s", storage=postgres_url)
    assert again.metric_names == ["val_top1", "gflops"]
    assert again.trials[0].values == [0.5, 1.25]
