"""A study's setup (attrs, objective names, paper rows) is marked complete last and redone on resume when cut
short; the paper rows never outnumber the trials requested (nothing is left WAITING)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from search import attrs
from search import spec as spec_mod
from search import study as study_mod

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROWS = [(f"row{i}", {"x": i / 10}) for i in range(5)]


def _setup(study, spec, lines):
    return study_mod.complete_setup(study, spec, spec.base_config(), 1.25, "none", ROWS, lines.append)


def _queued(study):
    return [t.user_attrs[attrs.PAPER_ROW] for t in study.get_trials(states=(TrialState.WAITING,))]


def test_an_interrupted_setup_is_completed_once():
    spec = spec_mod.load("demo")
    study = optuna.create_study(directions=study_mod.DIRECTIONS)
    # What a SIGKILL in the middle of the first setup left: one attr, two rows queued, no marker.
    study.set_user_attr("task", "demo")
    study_mod.enqueue_paper_rows(study, ROWS[:2], limit=spec.trials)
    lines: list[str] = []
    assert _setup(study, spec, lines) is True
    assert _queued(study) == ["row0", "row1", "row2", "row3", "row4"]  # each row once, in order
    assert study.user_attrs[attrs.BASELINE_GFLOPS] == 1.25 and study.user_attrs[attrs.SETUP_COMPLETE] is True
    assert study.user_attrs[attrs.BASE_CONFIG]["model"]["backbone"] == "convnextv2_atto"
    assert study.metric_names == ["val_top1", "gflops"]
    assert lines == []
    assert _setup(study, spec, lines) is False  # complete: nothing redone
    assert len(study.trials) == 5


def test_fewer_trials_than_paper_rows_queues_only_as_many_and_says_so():
    spec = spec_mod.load("demo").replace(trials=3)
    study = optuna.create_study(directions=study_mod.DIRECTIONS)
    lines: list[str] = []
    _setup(study, spec, lines)
    assert _queued(study) == ["row0", "row1", "row2"]
    assert lines == ["trials 3 < the paper's 5 rows: not queued: row3, row4"]


def test_rows_already_run_are_not_queued_again():
    study = optuna.create_study(directions=study_mod.DIRECTIONS)
    study_mod.enqueue_paper_rows(study, ROWS[:1], limit=5)
    trial = study.ask()  # row0 ran (its label is on a finished trial now)
    trial.suggest_float("x", 0, 1)
    study.tell(trial, [0.5, 1.0])
    assert study_mod.enqueue_paper_rows(study, ROWS, limit=3) == ["row3", "row4"]
    assert _queued(study) == ["row1", "row2"]


def test_target_trials_runs_every_queued_trial():
    study = optuna.create_study(directions=study_mod.DIRECTIONS)
    for i in range(4):
        study.enqueue_trial({"x": i / 10})
    lines: list[str] = []
    assert study_mod.target_trials(study, requested=10, counted=2, log=lines.append) == 10  # 8 left >= 4 queued
    assert lines == []
    assert study_mod.target_trials(study, requested=4, counted=2, log=lines.append) == 6
    assert lines == ["4 queued trials (re-runs, paper rows) exceed the 2 left of 4: running them all, "
                     "6 trials in the study"]
