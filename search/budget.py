"""The FLOPs budget as an Optuna constraint: the excess a trial records, and whether it is feasible.

A config is within budget when ``gflops <= limit(baseline_gflops, budget)``, i.e.
``(1 + budget) * baseline_gflops`` (`fgmodel.budget.budget_limit`, the rule the flops CLI
applies too). The searcher hands the excess ``gflops - limit`` to Optuna with
``trial.set_constraint`` (values > 0 are infeasible, and the margin tells the sampler
how far over a config went); Optuna stores it with the trial, its samplers learn from
it and ``Study.best_trials`` leaves infeasible trials out (`search.pareto.pareto_front`),
so everything reads it back from ``FrozenTrial.constraints`` (`is_feasible`).
"""

from __future__ import annotations

from optuna.trial import FrozenTrial

from fgmodel.budget import budget_limit as limit

CONSTRAINT = "flops_budget"  # the constraint's name in Optuna (and optuna-dashboard)

__all__ = ["CONSTRAINT", "excess", "is_feasible", "limit"]


def excess(gflops: float, baseline_gflops: float, budget: float) -> float:
    """GFLOPs over `limit`; > 0 means over budget."""
    return float(gflops) - limit(baseline_gflops, budget)


def is_feasible(trial: FrozenTrial) -> bool:
    """Within every constraint; a trial that never had its FLOPs measured has none and counts as feasible."""
    return all(value <= 0.0 for value in trial.constraints.values())
