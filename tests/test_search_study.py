"""The study lifecycle's pieces on in-memory studies: the one private Optuna name, light imports."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from search import attrs
from search import study as study_mod

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_recover_left_over_fails_running_trials_with_a_reason_and_requeues_them():
    """Exercises `study.reopen` (Optuna's private FrozenTrial._trial_id): fails loudly if Optuna drops it."""
    study = optuna.create_study(directions=study_mod.DIRECTIONS)
    study.enqueue_trial({"x": 0.5}, user_attrs={attrs.PAPER_ROW: "baseline"})
    asked = study.ask()
    asked.suggest_float("x", 0.0, 1.0)
    done = study.ask()
    done.suggest_float("x", 0.0, 1.0)
    study.tell(done, [0.5, 1.0])

    assert study_mod.recover_left_over(study, attrs.DRIVER_DIED) == [0]
    failed, complete, queued = study.trials
    assert failed.state == TrialState.FAIL and failed.user_attrs[attrs.REASON] == attrs.DRIVER_DIED
    assert complete.state == TrialState.COMPLETE
    assert queued.state == TrialState.WAITING
    assert queued.user_attrs == {attrs.RETRY_OF: 0, attrs.PAPER_ROW: "baseline"}
    assert study.ask().suggest_float("x", 0.0, 1.0) == 0.5  # the failed trial's config, asked again


@pytest.mark.slow
def test_reading_a_study_imports_neither_torch_nor_timm():
    code = "import sys, search.report, search.export; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'optuna'" in loaded  # the probe itself works
    for heavy in ("torch", "timm", "ray", "torchvision"):
        assert f"'{heavy}'" not in loaded, heavy
