"""The budget limit and excess, the constraint values and the feasible Pareto front on hand-made trials."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from fgmodel import flops
from search import budget

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_excess_numbers():
    # The paper's baseline, +5%: the limit is 72.156 GFLOPs.
    assert budget.excess(68.72, 68.72, 0.05) == pytest.approx(-3.436)
    assert budget.excess(68.951, 68.72, 0.05) == pytest.approx(-3.205)  # one 1x1 SCRA: +0.34%
    assert budget.excess(70.82, 68.72, 0.05) == pytest.approx(-1.336)  # one 3x3 SCRA: +3%
    assert budget.excess(73.9, 68.72, 0.05) == pytest.approx(1.744)  # 232 px: +7.5%
    assert budget.excess(72.156, 68.72, 0.05) == pytest.approx(0.0, abs=1e-12)
    assert budget.excess(10.0, 10.0, 0.0) == 0.0


def test_limit_numbers():
    assert budget.limit(68.72, 0.05) == pytest.approx(72.156)
    assert budget.limit(10.0, 0.0) == 10.0
    assert budget.excess(budget.limit(3.0, 0.1), 3.0, 0.1) == 0.0


def test_excess_agrees_with_fgmodel_within_budget():
    for gflops in (1.0, 1.04, 1.05, 1.0500001, 1.2, 0.5):
        for bud in (0.0, 0.05, 0.1):
            assert flops.within_budget(gflops, 1.0, bud) == (budget.excess(gflops, 1.0, bud) <= 0)


def _trial(state=TrialState.COMPLETE, values=None, **attrs):
    return create_trial(state=state, values=values, user_attrs=attrs)


def test_constraints_reads_the_attr():
    assert budget.constraints(_trial(values=[0.5, 1.0], budget_excess=2.5)) == [2.5]
    assert budget.constraints(_trial(values=[0.5, 1.0], budget_excess=-0.25)) == [-0.25]
    assert budget.constraints(_trial(state=TrialState.FAIL)) == [0.0]  # never measured: feasible
    assert budget.is_feasible(_trial(values=[0.5, 1.0], budget_excess=0.0))
    assert not budget.is_feasible(_trial(values=[0.5, 1.0], budget_excess=1e-9))


@pytest.mark.filterwarnings("ignore:`constraints_func` has been deprecated:FutureWarning")
def test_constraints_func_teaches_the_sampler():
    """TPE calls it after each trial and stores the result as the trial's constraints."""
    sampler = optuna.samplers.TPESampler(seed=0, constraints_func=budget.constraints)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 2.0)
        trial.set_user_attr("budget_excess", budget.excess(1.0 + x, 1.0, 0.05))
        return x, 1.0 + x

    study.optimize(objective, n_trials=6)
    for t in study.trials:
        assert t.constraints == {"0": pytest.approx(t.params["x"] - 0.05)}


def test_pareto_front_drops_dominated_infeasible_and_unfinished():
    study = optuna.create_study(directions=["maximize", "minimize"])
    rows = [
        # (state, values, budget_excess)
        (TrialState.COMPLETE, [0.70, 10.0], -0.5),  # 0 front: cheapest
        (TrialState.COMPLETE, [0.65, 11.0], -0.4),  # 1 dominated by 0
        (TrialState.COMPLETE, [0.80, 10.4], -0.1),  # 2 front
        (TrialState.COMPLETE, [0.95, 12.0], 1.5),  # 3 best acc but over budget
        (TrialState.COMPLETE, [0.85, 10.5], 0.0),  # 4 front: exactly at the limit
        (TrialState.PRUNED, None, 2.0),  # 5 over budget, never trained
        (TrialState.FAIL, None, None),  # 6
        (TrialState.COMPLETE, [0.80, 10.45], -0.05),  # 7 dominated by 2
    ]
    for state, values, exc in rows:
        attrs = {} if exc is None else {"budget_excess": exc}
        study.add_trial(_trial(state=state, values=values, **attrs))
    assert [t.number for t in budget.pareto_front(study)] == [0, 2, 4]
    # Without the budget, trial 3 joins the front (and dominates nothing else here).
    assert sorted(t.number for t in study.best_trials) == [0, 2, 3, 4]


def test_pareto_front_of_a_study_without_complete_trials():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_trial(state=TrialState.PRUNED, budget_excess=1.0))
    assert budget.pareto_front(study) == []
