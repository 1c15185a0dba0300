"""`StudySearcher` driven by hand, the way Ray Tune calls it: no Ray run, milliseconds.

The cases are the trial lives Ray produces: a clean run, an attempt that raised and was
re-run by ``FailureConfig(max_failures)`` then succeeded, one that failed every attempt,
a non-finite loss, and an early stop.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from search import spec
from search.searcher import StudySearcher, error_line

optuna.logging.set_verbosity(optuna.logging.WARNING)

EPOCHS = 2
GFLOPS = 1.0


@pytest.fixture
def searcher(tmp_path):
    study = optuna.create_study(directions=["maximize", "minimize"])
    base = spec.load("demo").replace(data_root=str(tmp_path), paper=False).base_config()
    return StudySearcher(
        study, "default", base, measure=lambda cfg: (GFLOPS, 1000), baseline_gflops=GFLOPS, budget=10.0,
        epochs=EPOCHS, n_trials=4, log=lambda line: None,
    )


def _epoch(epoch: int, top1: float, iteration: int | None = None) -> dict:
    return {"val_top1": top1, "epoch": epoch, "training_iteration": iteration or epoch, "train_seconds": 1.0 * epoch}


def _only_trial(searcher: StudySearcher) -> optuna.trial.FrozenTrial:
    (trial,) = searcher.study.get_trials()
    return trial


def test_clean_run_is_complete(searcher):
    assert isinstance(searcher.suggest("a"), dict)
    searcher.on_trial_result("a", _epoch(1, 0.3))
    searcher.on_trial_complete("a", _epoch(2, 0.5))
    trial = _only_trial(searcher)
    assert trial.state == TrialState.COMPLETE and trial.values == [0.5, GFLOPS]
    assert trial.user_attrs["curve"] == [0.3, 0.5]


def test_raised_then_retried_and_succeeded_is_complete(searcher):
    searcher.suggest("a")
    # First attempt: one epoch, then it raises (the trainable reports the error first).
    searcher.on_trial_result("a", _epoch(1, 0.2))
    error = "RuntimeError: CUDA error: unspecified launch failure"
    searcher.on_trial_result("a", {"error": error, "training_iteration": 2})
    # Ray re-runs it from scratch: epoch 1 again, then it runs to the end.
    searcher.on_trial_result("a", _epoch(1, 0.35))
    searcher.on_trial_complete("a", _epoch(2, 0.6), error=False)
    trial = _only_trial(searcher)
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    assert trial.values == [0.6, GFLOPS]
    assert trial.user_attrs["curve"] == [0.35, 0.6]
    assert trial.user_attrs["epochs_run"] == EPOCHS
    assert trial.user_attrs["reason"] == "completed" and "error" not in trial.user_attrs


def test_raised_before_any_epoch_then_succeeded_is_complete(searcher):
    searcher.suggest("a")
    searcher.on_trial_result("a", {"error": "OSError: disk hiccup", "training_iteration": 1})
    searcher.on_trial_result("a", _epoch(1, 0.4))
    searcher.on_trial_complete("a", _epoch(2, 0.7))
    trial = _only_trial(searcher)
    assert trial.state == TrialState.COMPLETE and trial.values == [0.7, GFLOPS]


def test_non_finite_then_retried_is_complete(searcher):
    searcher.suggest("a")
    searcher.on_trial_result("a", {"status": "non_finite", "reason": "non-finite loss at epoch 1"})
    searcher.on_trial_result("a", _epoch(1, 0.4))
    searcher.on_trial_complete("a", _epoch(2, 0.45))
    assert _only_trial(searcher).state == TrialState.COMPLETE


def test_raised_on_every_attempt_is_fail(searcher):
    searcher.suggest("a")
    searcher.on_trial_result("a", _epoch(1, 0.2))
    searcher.on_trial_result("a", {"error": "RuntimeError: boom", "training_iteration": 2})
    searcher.on_trial_result("a", _epoch(1, 0.25))
    searcher.on_trial_result("a", {"error": "RuntimeError: boom again", "training_iteration": 2})
    searcher.on_trial_complete("a", None, error=True)
    trial = _only_trial(searcher)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["error"] == "RuntimeError: boom again"
    assert trial.user_attrs["reason"] == "raised: RuntimeError"


def test_non_finite_is_fail(searcher):
    searcher.suggest("a")
    searcher.on_trial_result("a", _epoch(1, 0.2))
    searcher.on_trial_complete("a", {"status": "non_finite", "reason": "non-finite loss at epoch 2"})
    trial = _only_trial(searcher)
    assert trial.state == TrialState.FAIL and trial.user_attrs["reason"] == "non-finite loss at epoch 2"


def test_stopped_early_is_pruned_with_its_curve(searcher):
    searcher.suggest("a")
    searcher.on_trial_complete("a", _epoch(1, 0.1))
    trial = _only_trial(searcher)
    assert trial.state == TrialState.PRUNED and trial.user_attrs["curve"] == [0.1]


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (RuntimeError("boom"), "RuntimeError: boom"),
        (ValueError("first\nsecond line\n"), "ValueError: first"),
        (KeyError(), "KeyError"),
        (ValueError("ends with a colon:"), "ValueError: ends with a colon:"),
    ],
)
def test_error_line(exc, line):
    assert error_line(exc) == line
