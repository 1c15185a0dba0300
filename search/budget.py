"""The FLOPs budget as numbers Optuna understands, and the feasible Pareto front.

A config is within budget when ``gflops <= limit(baseline_gflops, budget)``, i.e.
``(1 + budget) * baseline_gflops`` (`fgmodel.flops.budget_limit`, the rule the flops CLI
applies too), i.e. when its excess is <= 0. That sign convention is Optuna's for constraints: values > 0
are infeasible, and the margin tells TPE how far over a config went. The searcher
stores the excess as the trial user attr ``budget_excess`` and hands it to the sampler
with ``trial.set_constraint``; everything here reads the attr back, in milliseconds.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.flops import budget_limit as limit

EXCESS_ATTR = "budget_excess"


def excess(gflops: float, baseline_gflops: float, budget: float) -> float:
    """GFLOPs over `limit`; > 0 means over budget."""
    return float(gflops) - limit(baseline_gflops, budget)


def constraints(trial: FrozenTrial) -> list[float]:
    """A trial's constraint values, ``[budget_excess]``, read back from its user attr.

    The sampler gets the same number through ``trial.set_constraint`` when the searcher
    asks the trial; this reader serves the Pareto selection and the reports.

    A trial without the attr never had its FLOPs measured (it failed before that): it is
    given 0.0, feasible and on the boundary, because a made-up penalty would teach the
    sampler a constraint that was never observed (and Optuna rejects NaN).
    """
    return [float(trial.user_attrs.get(EXCESS_ATTR, 0.0))]


def is_feasible(trial: FrozenTrial) -> bool:
    return all(c <= 0.0 for c in constraints(trial))


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The COMPLETE, within-budget, non-dominated trials, cheapest first.

    Selection is Optuna's own (``Study.best_trials`` with constraints), run on an
    in-memory copy whose constraints come from `constraints`: the front then honours the
    budget whatever the stored study's own constraint attrs hold.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line per call
    try:
        copy = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    for trial in complete:
        copy.add_trial(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE,
                values=trial.values,
                system_attrs={"constraints": constraints(trial)},
                user_attrs={"number": trial.number},
            )
        )
    by_number = {t.number: t for t in complete}
    front = [by_number[t.user_attrs["number"]] for t in copy.best_trials]
    return sorted(front, key=lambda t: (t.values[1], -t.values[0], t.number))
