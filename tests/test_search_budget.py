"""The budget rule (fgmodel.budget), the excess, feasibility and the feasible Pareto front on hand-made trials."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from fgmodel.budget import budget_limit, within_budget
from search import budget, pareto

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_excess_numbers():
    # The paper's baseline, +5%: the limit is 72.156 GFLOPs.
    assert budget.excess(68.72, 68.72, 0.05) == pytest.approx(-3.436)
    assert budget.excess(68.951, 68.72, 0.05) == pytest.approx(-3.205)  # one 1x1 SCRA: +0.34%
    assert budget.excess(70.82, 68.72, 0.05) == pytest.approx(-1.336)  # one 3x3 SCRA: +3%
    assert budget.excess(73.9, 68.72, 0.05) == pytest.approx(1.744)  # +7.5%
    assert budget.excess(72.156, 68.72, 0.05) == pytest.approx(0.0, abs=1e-12)
    assert budget.excess(10.0, 10.0, 0.0) == 0.0


def test_limit_numbers():
    assert budget.limit(68.72, 0.05) == pytest.approx(72.156)
    assert budget.limit(10.0, 0.0) == 10.0
    assert budget.limit(3.0, 0.1) == pytest.approx(3.3)


def test_fgmodel_budget_limit_and_its_edges():
    assert budget_limit(68.72, 0.05) == pytest.approx(72.156)
    assert budget_limit(100.0, 0.0) == 100.0
    assert within_budget(105.0, 100.0, 0.05)  # exactly at the limit is within
    assert not within_budget(105.001, 100.0, 0.05)
    assert within_budget(100.0, 100.0, 0.0)
    assert not within_budget(100.1, 100.0, 0.0)
    assert within_budget(70.82, 68.72, 0.05) and not within_budget(73.9, 68.72, 0.05)


def _trial(state=TrialState.COMPLETE, values=None, excess=None):
    trial = create_trial(state=state, values=values)
    if excess is not None:
        trial.set_constraint(budget.CONSTRAINT, excess)
    return trial


def test_feasibility_reads_optunas_constraint():
    assert budget.is_feasible(_trial(values=[0.5, 1.0], excess=0.0))
    assert budget.is_feasible(_trial(values=[0.5, 1.0], excess=-0.25))
    assert not budget.is_feasible(_trial(values=[0.5, 1.0], excess=1e-9))
    assert budget.is_feasible(_trial(state=TrialState.FAIL))  # never measured: no constraint


def test_pareto_front_drops_dominated_infeasible_and_unfinished():
    study = optuna.create_study(directions=["maximize", "minimize"])
    rows = [
        # (state, values, excess)
        (TrialState.COMPLETE, [0.70, 10.0], -0.5),  # 0 front: cheapest
        (TrialState.COMPLETE, [0.65, 11.0], -0.4),  # 1 dominated by 0
        (TrialState.COMPLETE, [0.80, 10.4], -0.1),  # 2 front
        (TrialState.COMPLETE, [0.95, 12.0], 1.5),  # 3 best acc but over budget
        (TrialState.COMPLETE, [0.85, 10.5], 0.0),  # 4 front: exactly at the limit
        (TrialState.PRUNED, None, 2.0),  # 5 over budget, never trained
        (TrialState.FAIL, None, None),  # 6
        (TrialState.COMPLETE, [0.80, 10.45], -0.05),  # 7 dominated by 2
    ]
    for state, values, excess in rows:
        study.add_trial(_trial(state=state, values=values, excess=excess))
    assert [t.number for t in pareto.pareto_front(study)] == [0, 2, 4]


def test_pareto_front_of_a_study_without_complete_trials():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_trial(state=TrialState.PRUNED, excess=1.0))
    assert pareto.pareto_front(study) == []
