"""`StudySearcher` driven by hand, the way Ray Tune calls it: no Ray run, milliseconds.

The cases are the trial lives Ray produces: a clean run, an attempt that raised and was
re-run by ``FailureConfig(max_failures)`` then succeeded, one that failed every attempt,
a non-finite loss, and an early stop.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

import spaces
from search import spec
from search import study as study_mod
from search.live import error_line
from search.searcher import MAX_UNTRAINED_IN_A_ROW, StudySearcher, counted_trials
from search.trials import counted

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


def test_ray_gets_the_finished_config_the_driver_measured(searcher):
    config = searcher.suggest("a")
    trial = _only_trial(searcher)
    assert config["config"] == trial.user_attrs["config"] and config["config"]["data"]["image_size"] > 0
    assert (config["name"], config["number"], config["gflops"]) == ("trial_0", 0, GFLOPS)


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


def _searcher(tmp_path, measure, n_trials=2, **spec_changes):
    study = optuna.create_study(directions=["maximize", "minimize"])
    base = spec.load("demo").replace(data_root=str(tmp_path), paper=False, **spec_changes).base_config()
    return StudySearcher(
        study, "default", base, measure=measure, baseline_gflops=GFLOPS, budget=0.05,
        epochs=EPOCHS, n_trials=n_trials, log=lambda line: None,
    )


def test_over_budget_proposals_are_recorded_but_not_counted(tmp_path):
    costs = iter([2.0, 1.0, 2.0, 2.0, 1.0])  # over, fits, over, over, fits
    searcher = _searcher(tmp_path, lambda cfg: (next(costs), 1000))
    first, second = searcher.suggest("a"), searcher.suggest("b")
    assert (first["number"], second["number"]) == (1, 4) and first["gflops"] == 1.0
    assert searcher.suggest("c") == StudySearcher.FINISHED  # two trained: the requested number
    trials = searcher.study.get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.RUNNING, TrialState.PRUNED,
                                         TrialState.PRUNED, TrialState.RUNNING]
    assert [counted(t) for t in trials] == [False, True, False, False, True]
    assert counted_trials(searcher.study) == 2 and searcher.exhausted is None


def test_a_space_with_nothing_within_budget_ends_the_search_with_one_line(tmp_path):
    lines = []
    searcher = _searcher(tmp_path, lambda cfg: (3.0, 1000), n_trials=5)
    searcher.log = lines.append
    assert searcher.suggest("a") == StudySearcher.FINISHED
    assert len(searcher.study.get_trials()) == MAX_UNTRAINED_IN_A_ROW
    assert counted_trials(searcher.study) == 0
    assert searcher.exhausted == lines[-1]
    assert f"{MAX_UNTRAINED_IN_A_ROW} proposals in a row from space 'default'" in lines[-1]
    assert searcher.suggest("b") == StudySearcher.FINISHED and len(searcher.study.get_trials()) == 50


def test_misses_in_a_row_reset_when_a_trial_trains(tmp_path):
    costs = iter([3.0] * (MAX_UNTRAINED_IN_A_ROW - 1) + [1.0] + [3.0] * (MAX_UNTRAINED_IN_A_ROW - 1) + [1.0])
    searcher = _searcher(tmp_path, lambda cfg: (next(costs), 1000))
    assert isinstance(searcher.suggest("a"), dict) and isinstance(searcher.suggest("b"), dict)
    assert searcher.exhausted is None and counted_trials(searcher.study) == 2


def test_paper_rows_carry_their_label_to_ray(tmp_path):
    searcher = _searcher(tmp_path, lambda cfg: (1.0, 1000))
    rows = spaces.paper_rows("default", searcher.base)
    study_mod.enqueue_paper_rows(searcher.study, rows, limit=1)
    config = searcher.suggest("a")
    assert config["paper_row"] == rows[0][0] == "baseline" and config["gflops"] == 1.0
    assert "paper_row" not in searcher.suggest("b")


def test_a_trial_that_reaches_the_dead_tail_is_complete_with_the_reason(tmp_path):
    study = optuna.create_study(directions=["maximize", "minimize"])
    base = spec.load("demo").replace(data_root=str(tmp_path), paper=False).base_config()
    reason = "schedule dead: lr <= 1% of its first value from epoch 3 of 30"
    searcher = StudySearcher(study, "default", base, measure=lambda cfg: (GFLOPS, 1000), baseline_gflops=GFLOPS,
                             budget=10.0, epochs=2, n_trials=1, complete_reason=reason, log=lambda line: None)
    config = searcher.suggest("a")
    assert config["stop_after"] == 2  # the trainable stops fit there, though the config's schedule has more
    searcher.on_trial_result("a", _epoch(1, 0.3))
    searcher.on_trial_complete("a", _epoch(2, 0.5))
    trial = _only_trial(searcher)
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["reason"] == reason
    assert trial.user_attrs["phase"] == "searched trials" and trial.user_attrs["train_seconds"] == 2.0


def test_paper_rows_are_recorded_in_their_phase(tmp_path):
    study = optuna.create_study(directions=["maximize", "minimize"])
    base = spec.load("demo").replace(data_root=str(tmp_path)).base_config()
    study_mod.enqueue_paper_rows(study, spaces.paper_rows("default", base)[:1], limit=1)
    searcher = StudySearcher(study, "default", base, measure=lambda cfg: (GFLOPS, 1000), baseline_gflops=GFLOPS,
                             budget=10.0, epochs=EPOCHS, n_trials=2, log=lambda line: None)
    searcher.suggest("a")
    searcher.suggest("b")
    assert [t.user_attrs["phase"] for t in study.get_trials()] == ["paper rows", "searched trials"]


def test_two_drivers_on_one_study_share_its_trials(tmp_path):
    """Two searchers (drivers) on one study, each asked for 4 trials: 4 trained in all, not 8."""
    first = _searcher(tmp_path, lambda cfg: (GFLOPS, 1000), n_trials=4)
    second = StudySearcher(first.study, "default", first.base, measure=lambda cfg: (GFLOPS, 1000),
                           baseline_gflops=GFLOPS, budget=0.05, epochs=EPOCHS, n_trials=4, log=lambda line: None)
    handed = []
    for i in range(8):
        for searcher in (first, second):
            config = searcher.suggest(f"{i}-{id(searcher)}")
            if config != StudySearcher.FINISHED:
                handed.append(config["number"])
    assert handed == [0, 1, 2, 3]
    assert counted_trials(first.study) == 4 and len(first.study.get_trials()) == 4
    assert first.counted == second.counted == 4


class _BeforeTrialRaises(optuna.samplers.RandomSampler):
    def before_trial(self, study, trial):
        raise RuntimeError("sampler broke\nin before_trial")


def test_a_raising_ask_fails_the_trial_it_made_and_raises(tmp_path):
    searcher = _searcher(tmp_path, lambda cfg: (GFLOPS, 1000))
    searcher.study.sampler = _BeforeTrialRaises()
    with pytest.raises(RuntimeError, match="sampler broke"):
        searcher.suggest("a")
    trial = _only_trial(searcher)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs == {"reason": "config error", "error": "RuntimeError: sampler broke"}
    assert counted_trials(searcher.study) == 0  # never trained


def test_a_raising_ask_fails_the_queued_trial_it_popped_and_leaves_the_running_ones(tmp_path):
    searcher = _searcher(tmp_path, lambda cfg: (GFLOPS, 1000), n_trials=4)
    assert searcher.suggest("a")["number"] == 0  # handed to Ray: RUNNING, must stay so
    rows = spaces.paper_rows("default", searcher.base)
    study_mod.enqueue_paper_rows(searcher.study, rows, limit=1)  # trial 1, WAITING: the next ask pops it
    searcher.study.sampler = _BeforeTrialRaises()
    with pytest.raises(RuntimeError):
        searcher.suggest("b")
    trials = searcher.study.get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.FAIL]
    assert trials[1].user_attrs["reason"] == "config error" and trials[1].user_attrs["paper_row"] == "baseline"
    assert "reason" not in trials[0].user_attrs
