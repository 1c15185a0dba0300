"""`LiveTrial`, the one follower of a running trial's reports (search and confirmation), and `FixedTrials`."""

from __future__ import annotations

import optuna
import pytest

from search.live import PROCESS_DIED, LiveTrial
from search.tuner import FixedTrials

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def live():
    study = optuna.create_study(directions=["maximize", "minimize"])
    return LiveTrial(study.ask(), gflops=1.5, epochs=2)


def _attrs(live: LiveTrial) -> dict:
    return live.trial.study.trials[live.trial.number].user_attrs


def test_epochs_are_written_on_the_record_as_they_come(live):
    live.record({"epoch": 1, "val_top1": 0.3, "train_seconds": 2.0, "images_per_sec": 50.0, "node_id": "n1",
                 "data_wait": 0.25})
    assert _attrs(live) == {"curve": [0.3], "epochs_run": 1, "train_seconds": 2.0, "images_per_sec": 50.0,
                            "data_wait": [0.25], "node_id": "n1"}
    assert not live.full
    live.record({"epoch": 2, "val_top1": 0.5, "train_seconds": 4.0, "val_hits": "2:gA=="})
    assert live.full and live.curve == [0.3, 0.5] and live.images_per_sec == 50.0 and live.data_wait == [0.25, 0.0]
    assert live.val_hits == "2:gA==" and "val_hits" not in _attrs(live)  # held for the confirmation to record
    assert live.failure(errored=False) is None


@pytest.mark.parametrize("failed", [{"error": "OSError: disk hiccup"}, {"status": "non_finite", "reason": "nan"}])
@pytest.mark.parametrize("epochs_before", [0, 1])
def test_a_retry_from_epoch_1_forgets_the_failed_attempt(live, failed, epochs_before):
    """Ray re-runs a failed trial in the same Ray trial: epoch 1 again starts a clean record."""
    for epoch in range(1, epochs_before + 1):
        live.record({"epoch": epoch, "val_top1": 0.2, "train_seconds": 9.0})
    live.record(failed)
    assert (live.error or live.non_finite) is not None
    live.record({"epoch": 1, "val_top1": 0.4, "train_seconds": 1.0})
    assert (live.error, live.non_finite, live.curve, live.train_seconds) == (None, None, [0.4], 1.0)


def test_failure_is_the_reported_line_else_rays_word(live):
    assert live.failure(errored=True) == PROCESS_DIED
    live.record({"error": "RuntimeError: boom"})
    assert live.failure(errored=True) == live.failure(errored=False) == "RuntimeError: boom"


def test_reports_without_the_metric_are_ignored(live):
    live.record({"training_iteration": 1})
    assert live.curve == [] and _attrs(live) == {}


def test_fixed_trials_hands_out_its_configs_in_order_then_finishes():
    searcher = FixedTrials([{"name": "a"}, {"name": "b"}])
    assert [searcher.suggest("1"), searcher.suggest("2")] == [{"name": "a"}, {"name": "b"}]
    assert searcher.suggest("3") == FixedTrials.FINISHED
    searcher.on_trial_complete("1", {"val_top1": 0.5})
