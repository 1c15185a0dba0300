"""search.resume's study-side recovery on in-memory studies: the one private Optuna name (``_trial_id``)."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from fgmodel.config import ConfigError
from search import attrs, resume, spec
from search.study import DIRECTIONS

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_recover_left_over_fails_running_trials_with_a_reason_and_requeues_them():
    """Exercises `resume.reopen` (Optuna's private FrozenTrial._trial_id): fails loudly if Optuna drops it."""
    study = optuna.create_study(directions=DIRECTIONS)
    study.enqueue_trial({"x": 0.5}, user_attrs={attrs.PAPER_ROW: "baseline"})
    asked = study.ask()
    asked.suggest_float("x", 0.0, 1.0)
    done = study.ask()
    done.suggest_float("x", 0.0, 1.0)
    study.tell(done, [0.5, 1.0])

    assert resume.recover_left_over(study, attrs.DRIVER_DIED) == [0]
    failed, complete, queued = study.trials
    assert failed.state == TrialState.FAIL and failed.user_attrs[attrs.REASON] == attrs.DRIVER_DIED
    assert complete.state == TrialState.COMPLETE
    assert queued.state == TrialState.WAITING
    assert queued.user_attrs == {attrs.RETRY_OF: 0, attrs.PAPER_ROW: "baseline"}
    assert study.ask().suggest_float("x", 0.0, 1.0) == 0.5  # the failed trial's config, asked again


def test_a_paper_row_killed_while_its_params_were_set_is_queued_whole():
    # a clean-clone CI run killed the driver between two of a paper row's suggest calls: its retry had
    # the first params and drew the rest (a random lr, SCRA) under the paper row's name
    study = optuna.create_study(directions=DIRECTIONS)
    study.enqueue_trial({"x": 0.5, "y": 0.25}, user_attrs={attrs.PAPER_ROW: "+ L2SP"})
    cut = study.ask()
    cut.suggest_float("x", 0.0, 1.0)  # the kill lands here: y is never set

    assert resume.recover_left_over(study, attrs.DRIVER_DIED) == [0]
    again = study.ask()
    assert again.user_attrs == {attrs.RETRY_OF: 0, attrs.PAPER_ROW: "+ L2SP"}
    assert (again.suggest_float("x", 0.0, 1.0), again.suggest_float("y", 0.0, 1.0)) == (0.5, 0.25)


def test_recover_interrupted_queues_the_failed_and_the_asked_but_not_handed_to_ray(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=url, directions=DIRECTIONS)
    study = resume.DriverStudy("s", optuna.storages.RDBStorage(url), None, heartbeat=60)
    failed = study.ask()  # Ray ran it; the searcher told it FAIL ("interrupted") on Ctrl-C
    failed.suggest_float("x", 0.0, 1.0)
    failed.set_user_attr(attrs.REASON, attrs.INTERRUPTED)
    study.tell(failed, state=TrialState.FAIL)
    asked = study.ask()  # asked, never handed to Ray
    asked.suggest_float("x", 0.0, 1.0)
    other = optuna.load_study(study_name="s", storage=url).ask()  # another driver's: left alone
    other.suggest_float("x", 0.0, 1.0)

    resume.recover_interrupted(study, [failed.number])
    trials = study.trials
    assert trials[asked.number].state == TrialState.FAIL
    assert trials[asked.number].user_attrs[attrs.REASON] == attrs.INTERRUPTED
    assert trials[other.number].state == TrialState.RUNNING and not study.mine
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert [t.user_attrs[attrs.RETRY_OF] for t in queued] == [failed.number, asked.number]
    again = [study.ask().suggest_float("x", 0.0, 1.0) for _ in queued]  # their configs, asked again
    assert again == [trials[failed.number].params["x"], trials[asked.number].params["x"]]


def test_a_resume_must_train_complete_trials_as_long_as_the_study_did():
    s = spec.load("demo").replace(epochs=30, config={**spec.load("demo").config, "optim.step_size": 5})
    base = s.base_config()
    stored = {"epochs": 30, attrs.TRAINED_EPOCHS: 10}
    resume.check_resume(stored, s, base)  # 0.01 cuts at epoch 10, as the study did
    with pytest.raises(ConfigError) as info:
        resume.check_resume(stored, s.replace(dead_lr_fraction=None), base)
    assert info.value.field == "dead_lr_fraction" and "trained 10 epochs, this spec's would train 30" in str(info.value)
    with pytest.raises(ConfigError):  # a study from before the cut trained every epoch
        resume.check_resume({"epochs": 30}, s, base)
