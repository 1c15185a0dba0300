"""The spec's search strategy: ``sampler`` and ``scheduler`` keys, the objects they build, rungs on resume."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from fgmodel.config import ConfigError
from search import attrs
from search import spec as spec_mod
from search import study as study_mod
from search.budget import CONSTRAINT
from search.moasha import MOASHAScheduler, rung_curves
from search.sampler import StoppedTrialSampler
from search.tuner import make_scheduler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _spec(**changes) -> spec_mod.StudySpec:
    return spec_mod.load("demo").replace(**changes)


def test_defaults_are_moasha_and_tpe_on_stopped_trials():
    s = spec_mod.load("cub")
    assert (s.scheduler, s.sampler, s.learn_from_stopped) == ("moasha", "tpe", True)
    assert spec_mod.StudySpec(task="demo").scheduler == "moasha"


@pytest.mark.parametrize("key, value", [("scheduler", "hyperband"), ("sampler", "cmaes")])
def test_unknown_strategy_is_one_line_naming_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        _spec(**{key: value})
    assert info.value.field == key and value in str(info.value)


@pytest.mark.parametrize(
    "changes, kind, inner",
    [
        ({}, StoppedTrialSampler, optuna.samplers.TPESampler),
        ({"scheduler": "asha"}, StoppedTrialSampler, optuna.samplers.TPESampler),
        ({"scheduler": "fifo"}, optuna.samplers.TPESampler, None),  # nothing is stopped: nothing to learn
        ({"learn_from_stopped": False}, optuna.samplers.TPESampler, None),
        ({"sampler": "random"}, optuna.samplers.RandomSampler, None),  # learns nothing anyway
        ({"sampler": "random", "scheduler": "fifo"}, optuna.samplers.RandomSampler, None),
    ],
)
def test_make_sampler(changes, kind, inner):
    sampler = study_mod.make_sampler(_spec(**changes))
    assert type(sampler) is kind
    if inner is not None:
        assert type(sampler.inner) is inner


@pytest.mark.parametrize(
    "changes",
    [{}, {"scheduler": "asha"}, {"scheduler": "fifo"}, {"learn_from_stopped": False},
     {"scheduler": "fifo", "learn_from_stopped": False}],
)
def test_make_sampler_gp_wraps_optunas_gp(changes):
    """Always: GP fits COMPLETE and RUNNING trials only, the budget is in the PRUNED over-budget ones."""
    sampler = study_mod.make_sampler(_spec(sampler="gp", **changes))
    assert type(sampler) is StoppedTrialSampler and type(sampler.inner) is optuna.samplers.GPSampler


def test_gp_without_a_scheduler_fits_the_over_budget_proposals():
    """A study holding only over-budget proposals (PRUNED, as the searcher tells them): the study GP
    fits is the view, where they are COMPLETE with their constraint, not the real one, where GP sees none."""
    sampler = study_mod.make_sampler(_spec(sampler="gp", scheduler="fifo", learn_from_stopped=False))
    study = optuna.create_study(directions=study_mod.DIRECTIONS, sampler=sampler)
    for x, excess in [(0.9, 0.5), (0.8, 0.3)]:
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.PRUNED, params={"x": x}, distributions={"x": FloatDistribution(0, 1)},
            user_attrs={attrs.GFLOPS: 1.0 + excess, attrs.OVER_BUDGET: True}, constraints={CONSTRAINT: excess},
        ))
    assert not study.get_trials(states=(TrialState.COMPLETE, TrialState.RUNNING))  # what an unwrapped GP would fit
    trial = study.ask()
    assert 0 <= trial.suggest_float("x", 0, 1) <= 1
    view = sampler.view(study)
    assert view.sampler is sampler.inner and type(view.sampler) is optuna.samplers.GPSampler
    fitted = view.get_trials(states=(TrialState.COMPLETE,))
    assert [(t.params["x"], t.constraints) for t in fitted] == [(0.9, {CONSTRAINT: 0.5}), (0.8, {CONSTRAINT: 0.3})]


def test_make_scheduler():
    fifo = make_scheduler(_spec(scheduler="fifo"))
    assert type(fifo) is FIFOScheduler
    mo = make_scheduler(_spec())  # demo: 8 epochs, grace 1, eta 2: rungs counted down from 8, at 4, 2 and 1
    assert isinstance(mo, MOASHAScheduler) and mo.multi_objective and list(mo.rungs) == [1, 2, 4]
    assert list(make_scheduler(_spec(), max_t=2).rungs) == [1]  # a schedule cut at its dead tail
    asha = make_scheduler(_spec(scheduler="asha", epochs=9, grace_period=1, reduction_factor=3))
    assert not asha.multi_objective and list(asha.rungs) == [1, 3]
    assert make_scheduler(_spec(epochs=1, grace_period=2)).rungs == {}  # grace capped at the epochs


def _finished(study, curve, gflops, state=TrialState.PRUNED):
    study.add_trial(optuna.trial.create_trial(
        state=state, values=[curve[-1], gflops] if state == TrialState.COMPLETE else None,
        params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
        user_attrs={"curve": curve, "gflops": gflops},
    ))


def test_resume_refills_the_rungs_from_the_studys_curves(tmp_path):
    """A resumed search's scheduler judges its first trial against the trials the study already ran."""
    s = _spec(epochs=4, grace_period=1, reduction_factor=2, study_dir=str(tmp_path), data_root=str(tmp_path))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = study_mod.open_for_search(s, url, resume=False)
    _finished(study, [0.5, 0.6, 0.7, 0.8], 1.0, TrialState.COMPLETE)
    _finished(study, [0.45, 0.55], 1.0)
    _finished(study, [0.4], 1.2)
    _finished(study, [0.9, 0.9], 1.0, TrialState.FAIL)  # cut short: it runs again, its curve stays out
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs={"gflops": 9.0}))  # over budget
    resumed = study_mod.open_for_search(s, url, resume=True, base=s.base_config())
    curves = rung_curves(resumed.get_trials())
    assert curves == [(0, 1.0, [0.5, 0.6, 0.7, 0.8]), (1, 1.0, [0.45, 0.55]), (2, 1.2, [0.4])]

    scheduler = make_scheduler(s, curves)
    assert {level: len(rec) for level, rec in scheduler.rungs.items()} == {1: 3, 2: 2}
    weak = Trial("__fake", config={"number": 5, "gflops": 1.0}, stub=True)
    scheduler.on_trial_add(None, weak)
    # 0.42 at 1.0 GFLOPs: below 0.5 and 0.45 at the same cost; keep ceil(4 / 2) = 2 of the rung's 4.
    assert scheduler.on_trial_result(None, weak, {"training_iteration": 1, "val_top1": 0.42}) == TrialScheduler.STOP
    fresh = make_scheduler(s)  # what a resume without the curves would have done: first at the rung, goes on
    fresh.on_trial_add(None, weak)
    assert fresh.on_trial_result(None, weak, {"training_iteration": 1, "val_top1": 0.42}) == TrialScheduler.CONTINUE


def _record(study, state, top1=None, gflops=1.0, *, over=False, reason="", row=None, excess=-0.1):
    user = {"over_budget": over, "reason": reason, "gflops": gflops} | ({"paper_row": row} if row else {})
    study.add_trial(optuna.trial.create_trial(
        state=state, values=[top1, gflops] if state == TrialState.COMPLETE else None,
        user_attrs=user, constraints={"flops_budget": excess},
    ))


def test_summary_counts_trained_and_untrained_trials_and_compares_with_the_paper():
    from search import run

    study = optuna.create_study(directions=study_mod.DIRECTIONS)
    _record(study, TrialState.COMPLETE, 0.80, 1.00, row="baseline")
    _record(study, TrialState.COMPLETE, 0.82, 1.02, row="+ SCRA - L2SP")
    _record(study, TrialState.PRUNED, over=True, gflops=1.3, excess=0.25)
    _record(study, TrialState.COMPLETE, 0.845, 0.75)
    _record(study, TrialState.PRUNED, reason="stopped early at epoch 2")
    _record(study, TrialState.FAIL, reason="raised: RuntimeError")
    _record(study, TrialState.FAIL, reason="config error")
    _record(study, TrialState.FAIL, reason="interrupted")
    _record(study, TrialState.COMPLETE, 0.99, 1.2, excess=0.15)  # over budget yet COMPLETE: not the best
    trials = study.get_trials()
    assert run.trial_counts(trials) == ("6 trained (4 COMPLETE, 1 stopped early, 1 FAIL); not trained: "
                                        "1 over the FLOPs budget, 1 config errors, 1 cut short (run again on resume)")
    assert run.best_versus_paper(trials) == (
        "best trial: #3 val top-1 0.8450 at 0.75 GFLOPs; best paper row '+ SCRA - L2SP' (#1) 0.8200 at "
        "1.02 GFLOPs: +2.50 pp top-1, -26.5% GFLOPs")
    assert run.best_versus_paper(trials[2:]) == (
        "best trial: #3 val top-1 0.8450 at 0.75 GFLOPs (no paper row COMPLETE to compare with)")
    assert run.best_versus_paper(trials[2:3]) is None


@pytest.mark.slow
def test_a_tiny_gp_search_runs_on_a_default_install(small_demo_root, tmp_path, monkeypatch):
    """``--sampler gp`` end to end on the demo at 32 px: two trained trials, the second the GP's own proposal."""
    import yaml

    from search import run

    real_init, real_sample = optuna.samplers.GPSampler.__init__, optuna.samplers.GPSampler.sample_relative
    proposals: list[dict] = []

    def gp_after_one(self, **kwargs):  # the GP fits (scipy) from the first finished trial on, not the 11th
        real_init(self, **{**kwargs, "n_startup_trials": 1})

    def recorded(self, *args):
        proposals.append(real_sample(self, *args))
        return proposals[-1]

    monkeypatch.setattr(optuna.samplers.GPSampler, "__init__", gp_after_one)
    monkeypatch.setattr(optuna.samplers.GPSampler, "sample_relative", recorded)
    demo = yaml.safe_load(spec_mod.spec_path("demo").read_text())
    path = tmp_path / "gp.yaml"
    path.write_text(yaml.safe_dump({**demo, "paper": False}))  # no enqueued rows: every trial is proposed
    study_dir = tmp_path / "gpcheck"
    code = run.main(["--spec", str(path), "--name", "gpcheck", "--sampler", "gp", "--trials", "2", "--epochs", "1",
                     "--image-size", "32", "--concurrency", "1", "--no-confirm", "--data-root", str(small_demo_root),
                     "--study-dir", str(study_dir)])
    assert code == 0
    study = optuna.load_study(study_name="gpcheck", storage=f"sqlite:///{study_dir / 'optuna.db'}")
    trained = [t for t in study.get_trials() if not t.user_attrs.get("over_budget")]
    assert [t.state for t in trained] == [TrialState.COMPLETE] * 2
    assert all(0.0 <= t.values[0] <= 1.0 and t.values[1] > 0 for t in trained)
    assert any(proposals)  # the GP proposed params itself (its startup proposals are empty)
