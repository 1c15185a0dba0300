"""A sampler that learns from the trials successive halving stopped (BOHB-style).

A multi-objective study cannot ``trial.report()``, so Optuna's TPE scores every PRUNED
trial the same (ties go by trial number): it cannot tell a trial stopped at epoch 4 with
80% from one stopped at epoch 1 with 20%, and most trained trials end PRUNED. BOHB's
answer (Falkner et al. 2018) is to fit the model on the highest budget that has enough
observations. `StoppedTrialSampler` does that with public Optuna APIs only:

* before each proposal it builds an in-memory *view* study of the real one
  (`view_trials`): the highest epoch ``E`` that at least ``min_trials`` trained trials
  reached is the view's fidelity; each trial that reached it is COMPLETE with values
  (top-1 at epoch ``E`` from its ``curve`` user attr, GFLOPs) and its FLOPs constraint
  (``trial.constraints``); trials stopped earlier are PRUNED, ordered best first (later
  epoch, then higher top-1);
  over-budget records (never trained) are infeasible with their excess, COMPLETE at the
  lowest top-1 seen so a GP learns the constraint too; the real study's RUNNING trials are
  RUNNING in the view (TPE's constant liar, GP's running-trial acquisition);
* the inner sampler (TPE, random, GP) proposes on the view: the real trial's define-by-run
  suggestions are asked, one by one, of a view trial (``view.ask()``), so relative
  (multivariate, grouped) sampling happens inside the view by the inner sampler's own
  machinery, and each value is replayed into the real trial.

So a trial stopped at epoch e with top-1 a ranks above every trial stopped earlier
(COMPLETE before PRUNED, or PRUNED earlier in the order) and above one stopped at the
same epoch with a lower top-1 (dominated at the same GFLOPs; or behind it in the PRUNED
order). TPE takes PRUNED trials that tie on its score in the order they come
(``_split_pruned_trials`` sorts stably; checked for Optuna 5.0 by a test in
tests/test_search_sampler.py that fails loudly if that changes); the order only matters when
TPE's good group is larger than the view's COMPLETE trials.

The view is rebuilt only when the real study has new finished trials; a new inner sampler
comes with each view (samplers cache per-study state), seeded from ``seed`` and the
number of trials so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from search.attrs import CURVE, GFLOPS
from search.budget import is_feasible

InnerFactory = Callable[[int | None], BaseSampler]


def _curve(trial: FrozenTrial) -> list[float]:
    curve = trial.user_attrs.get(CURVE) or []
    out = []
    for value in curve:
        if value is None or not math.isfinite(float(value)):
            break
        out.append(float(value))
    return out


def view_epoch(lengths: Sequence[int], min_trials: int) -> int:
    """The highest epoch that at least ``min_trials`` of the curves reached; 1 if none did, 0 with no curves."""
    lengths = [n for n in lengths if n > 0]
    if not lengths:
        return 0
    ordered = sorted(lengths, reverse=True)
    if len(ordered) < min_trials:
        return 1
    return ordered[min_trials - 1]


def view_trials(trials: Sequence[FrozenTrial], min_trials: int, *, below: str = "pruned",
                over_budget: str = "floor") -> tuple[int, list[FrozenTrial]]:
    """The view epoch ``E`` and the view's trials, in the order to add them (see the module docstring).

    Trials keep the real study's order (TPE weights recent trials more), except that the
    PRUNED ones are sorted best first among the places PRUNED trials hold. FAIL and
    WAITING trials, and trials whose FLOPs (and so their constraint) were never measured, stay out.
    ``below="out"`` leaves the trials stopped before ``E`` out instead of PRUNED (BOHB fits
    its model on one fidelity's observations only); ``over_budget="out"`` leaves the
    over-budget records out instead of COMPLETE at the floor (they then neither end TPE's
    random start-up nor join its groups).
    """
    usable = []
    for t in trials:
        if t.state in (TrialState.FAIL, TrialState.WAITING) or GFLOPS not in t.user_attrs:
            continue
        if t.state == TrialState.RUNNING and not t.params:
            continue
        if not t.constraints:  # the searcher sets the FLOPs constraint with the GFLOPs; an old record lacks it
            continue
        usable.append((t, dict(t.constraints), _curve(t)))

    trained = [c for t, _, c in usable if t.state.is_finished() and is_feasible(t)]
    epoch = view_epoch([len(c) for c in trained], min_trials)
    at_epoch = [c[epoch - 1] for c in trained if epoch and len(c) >= epoch]
    floor = min(at_epoch, default=0.0)

    out: list[FrozenTrial | None] = []
    pruned: list[tuple[tuple[float, float], FrozenTrial]] = []
    for t, cons, curve in usable:
        common: dict[str, Any] = {
            "params": t.params,
            "distributions": t.distributions,
            "user_attrs": {"number": t.number, "epochs": len(curve)},
        }
        gflops = float(t.user_attrs[GFLOPS])
        if t.state == TrialState.RUNNING:
            out.append(optuna.trial.create_trial(state=TrialState.RUNNING, **common))
        elif not is_feasible(t):
            if over_budget == "out":
                continue
            out.append(
                optuna.trial.create_trial(state=TrialState.COMPLETE, values=[floor, gflops], constraints=cons, **common)
            )
        elif epoch and len(curve) >= epoch:
            out.append(
                optuna.trial.create_trial(
                    state=TrialState.COMPLETE, values=[curve[epoch - 1], gflops], constraints=cons, **common
                )
            )
        elif below != "out":
            quality = (-len(curve), -curve[-1] if curve else math.inf)
            pruned.append((quality, optuna.trial.create_trial(state=TrialState.PRUNED, constraints=cons, **common)))
            out.append(None)  # a PRUNED place, filled best first below
    best_first = iter(t for _, t in sorted(pruned, key=lambda qt: qt[0]))
    return epoch, [t if t is not None else next(best_first) for t in out]


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` under ``dist`` through the public suggest API."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    raise TypeError(f"unsupported distribution for {name!r}: {dist!r}")


class StoppedTrialSampler(BaseSampler):
    """Proposes with ``make_inner(seed)`` fitted on a view of the study at its best-covered epoch.

    ``make_inner`` builds the inner sampler (e.g. ``lambda s: TPESampler(seed=s)``);
    ``min_trials`` is how many trained trials an epoch needs to become the view's fidelity
    (None: the number of params the study has seen plus one, BOHB's rule); ``below`` and
    ``over_budget`` say what the view makes of trials stopped before it and of over-budget
    records (`view_trials`).
    Lifecycle (Optuna calls these): ``before_trial`` refreshes the view when the study has
    new finished trials and asks a view trial; ``sample_independent`` replays each of the
    real trial's suggestions on it (nothing is sampled relatively at the real study's
    level); ``after_trial`` forgets it (it stays RUNNING in the view, a constant liar,
    until the next rebuild mirrors the real trial instead).
    """

    def __init__(self, make_inner: InnerFactory, *, seed: int | None = None, min_trials: int | None = 5,
                 below: str = "pruned", over_budget: str = "floor") -> None:
        if min_trials is not None and min_trials < 1:
            raise ValueError(f"min_trials must be >= 1 or None, got {min_trials}")
        self._make_inner = make_inner
        self._seed = seed
        self.min_trials = min_trials
        self.below = below
        self.over_budget = over_budget
        self.inner: BaseSampler = make_inner(seed)
        self._view: optuna.Study | None = None
        self._view_key: int | None = None
        self._asked: dict[int, optuna.Trial] = {}
        self.view_epoch = 0
        self.rebuilds = 0

    def view(self, study: optuna.Study) -> optuna.Study:
        """The view of ``study``, rebuilt when ``study`` has finished trials the view has not seen."""
        trials = study.get_trials(deepcopy=False)
        key = sum(1 for t in trials if t.state.is_finished())
        if self._view is not None and key == self._view_key:
            return self._view
        min_trials = self.min_trials or len({name for t in trials for name in t.distributions}) + 1
        self.view_epoch, view = view_trials(trials, min_trials, below=self.below, over_budget=self.over_budget)
        self.inner = self._make_inner(None if self._seed is None else self._seed + len(trials))
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line per rebuild
        try:
            self._view = optuna.create_study(directions=study.directions, sampler=self.inner)
        finally:
            optuna.logging.set_verbosity(verbosity)
        self._view.add_trials(view)
        self._view_key = key
        self.rebuilds += 1
        return self._view

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._asked[trial.number] = self.view(study).ask()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        view_trial = self._asked.get(trial.number)
        if view_trial is None:  # a trial this sampler did not see start (another process asked it)
            view_trial = self._asked[trial.number] = self.view(study).ask()
        return _suggest(view_trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._asked.pop(trial.number, None)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
