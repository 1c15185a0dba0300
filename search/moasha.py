"""Multi-objective asynchronous successive halving (MOASHA) as a Ray Tune scheduler.

Ray's ASHA ranks a rung on one metric, so a 168-px config that is nearly as accurate as
the 224-px ones, at 60% of their FLOPs, is cut and the cheap end of the front thins out.
MOASHA (Schmucker et al. 2021, "Multi-objective multi-fidelity hyperparameter
optimization with application to fairness"; Syne Tune's ``schedulers.multiobjective.MOASHA``)
ranks a rung by non-dominated sorting instead: here on (val top-1 at the rung, up;
GFLOPs, down). Ties inside the last front that fits are broken by NSGA-II's crowding
distance (Syne Tune uses an epsilon-net; crowding distance is the textbook choice and
needs no random seed point).

Asynchronous like ASHA: when a trial reaches a rung it is judged against the results
recorded at that rung so far, and goes on when it is in the top ``ceil(n / eta)`` of the
``n`` results there (itself included). Rungs are counted down from the last epoch,
``max_t / eta**k`` rounded and none below the grace period (`search.plan.rung_ladder`):
10 epochs with eta 3 give rungs 1 and 3, 30 give 3 and 10 (grace 3).

Hand-written because neither library has it in the shape the search needs: Ray has no
multi-objective scheduler, Syne Tune's is for its own backend, and Optuna's non-dominated
sort is private. The same class runs single-objective ASHA (``multi_objective=False``)
so both modes share two things Ray's ``ASHAScheduler`` lacks: trials that must run at full
fidelity (the paper's Table 1 rows) are never stopped, and the rungs can be refilled from
the curves of finished trials when a study resumes (`MOASHAScheduler.restore_rungs`).

The decision (`promote`) is a plain function over ``(key, top1, gflops)`` tuples.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.attrs import CURVE, GFLOPS, PAPER_ROW  # the searcher puts PAPER_ROW in a paper row's trial config
from search.pareto import rank
from search.plan import rung_ladder

# (trial key, val top-1 at the rung, GFLOPs)
RungResult = tuple[Hashable, float, float]
# (trial key, GFLOPs, val top-1 after epoch 1, 2, ...): what `MOASHAScheduler.restore_rungs` takes
Curve = tuple[Hashable, float, Sequence[float]]


def rung_curves(trials: Iterable[FrozenTrial]) -> list[Curve]:
    """The curves of a study's trained, finished trials (COMPLETE or stopped), to refill the rungs on resume.

    FAIL trials stay out: a trial the driver cut short runs again from its first epoch.
    """
    return [
        (t.number, float(t.user_attrs[GFLOPS]), list(t.user_attrs[CURVE]))
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.user_attrs.get(CURVE) and GFLOPS in t.user_attrs
    ]


def rung_milestones(grace_period: float, reduction_factor: float, max_t: float) -> list[int]:
    """The rung levels, ascending: `search.plan.rung_ladder` (the plan counts the same rungs)."""
    return rung_ladder(grace_period, reduction_factor, int(max_t))


def cost_levels(costs: Sequence[float], tolerance: float) -> list[float]:
    """Each cost replaced by the cheapest cost of its level: a level holds the costs within ``tolerance``
    (relative) of its cheapest one; 0 keeps every cost as it is.

    Exact dominance on GFLOPs counts +0.34% for a 1x1 SCRA block like -44% for a smaller
    image: a slightly costlier, slightly better trial is then never dominated, and takes a
    place at a rung that more accuracy at the same cost should have.
    """
    if tolerance <= 0:
        return list(costs)
    level_of: dict[float, float] = {}
    start = math.nan
    for cost in sorted(set(costs)):
        if not cost <= start * (1.0 + tolerance):
            start = cost
        level_of[cost] = start
    return [level_of[c] for c in costs]


def promote(
    rung_results: Sequence[RungResult],
    candidate: RungResult,
    reduction_factor: float,
    *,
    multi_objective: bool = True,
    cost_tolerance: float = 0.0,
) -> bool:
    """Whether ``candidate`` goes on from a rung holding ``rung_results`` (the others so far).

    It goes on when it is among the top ``ceil(n / reduction_factor)`` of the ``n`` results
    (itself included): by non-dominated sorting with the crowding-distance tie-break when
    ``multi_objective``, else by top1 alone. Costs are compared by level (`cost_levels`
    with ``cost_tolerance``). A candidate tied exactly with another goes on (as in Ray's
    ASHA, where a score equal to the cutoff continues). A non-finite top1 never goes on.
    """
    key, top1, gflops = candidate
    if not math.isfinite(top1):
        return False
    others = [(k, t, g) for k, t, g in rung_results if k != key and math.isfinite(t)]
    keep = math.ceil((len(others) + 1) / reduction_factor)
    if not multi_objective:
        return sum(1 for _, t, _ in others if t > top1) < keep
    levels = cost_levels([g for _, _, g in others] + [gflops], cost_tolerance)
    points = list(zip([t for _, t, _ in others] + [top1], levels, strict=True))
    me = len(points) - 1
    order = rank(points)
    # Exact ties go to the candidate: it stands where the best of the points equal to it stands.
    position = min(pos for pos, i in enumerate(order) if points[i] == points[me])
    return position < keep


class MOASHAScheduler(FIFOScheduler):
    """Asynchronous successive halving on (val top-1 up, GFLOPs down), or on top-1 alone.

    Lifecycle (Ray Tune calls these): ``on_trial_result`` with each epoch's result; when
    ``time_attr`` first reaches a rung, the trial's ``metric`` there and its cost (the
    ``cost`` key of the result, else of the trial's config: a constant per trial) are
    judged by `promote` against what that rung recorded so far, then recorded. At
    ``max_t`` the trial stops (it is done). Protected trials (``"paper_row"`` in their
    config) are recorded like any other but always continue.
    Trials are chosen to run in submission order (FIFO).
    """

    def __init__(
        self,
        *,
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        metric: str = "val_top1",
        cost: str = "gflops",
        time_attr: str = "training_iteration",
        multi_objective: bool = True,
        cost_tolerance: float = 0.0,
    ) -> None:
        super().__init__()
        if grace_period > max_t:
            raise ValueError(f"grace_period ({grace_period}) must be <= max_t ({max_t})")
        self._metric = metric
        self.cost = cost
        self.time_attr = time_attr
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        self.multi_objective = multi_objective
        self.cost_tolerance = cost_tolerance
        self.rungs: dict[float, dict[Hashable, tuple[float, float]]] = {
            level: {} for level in rung_milestones(grace_period, reduction_factor, max_t)
        }
        self.num_stopped = 0

    # -- Ray's contract ---------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Accept Tune's metric/mode only where they agree with this scheduler's (val top-1, max)."""
        return (metric is None or metric == self._metric) and mode in (None, "max")

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        if self.time_attr not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        if result[self.time_attr] >= self.max_t:
            return TrialScheduler.STOP
        go_on = self._at_rung(trial, result, decide=True)
        if go_on or self.is_protected(trial):
            return TrialScheduler.CONTINUE
        self.num_stopped += 1
        return TrialScheduler.STOP

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> None:
        """Tune hands the last result here instead of to ``on_trial_result``: record it too."""
        if result and self.time_attr in result and self._metric in result and result[self.time_attr] < self.max_t:
            self._at_rung(trial, result, decide=False)

    def debug_string(self) -> str:
        mode = "multi-objective" if self.multi_objective else "single-objective"
        rungs = ", ".join(f"{level:g}: {len(rec)}" for level, rec in self.rungs.items())
        return f"Using {mode} async successive halving: {self.num_stopped} stopped; results per rung {{{rungs}}}"

    # -- ours -------------------------------------------------------------------------

    def is_protected(self, trial: Trial) -> bool:
        """A trial that must run at full fidelity: a paper row."""
        config = getattr(trial, "config", None) or {}
        return bool(config.get(PAPER_ROW))

    def restore_rungs(self, curves: Iterable[Curve]) -> int:
        """Fill the rungs from finished trials' per-epoch curves; returns how many results went in.

        ``curves`` holds ``(trial key, gflops, [top1 after epoch 1, 2, ...])``; a rung at
        level ``m`` takes ``curve[ceil(m) - 1]`` from each curve that long. Keys are kept
        apart from Ray's trial ids, so a study's trial 3 never collides with a live trial.
        """
        added = 0
        for key, gflops, curve in curves:
            for level, recorded in self.rungs.items():
                epoch = math.ceil(level)
                if len(curve) >= epoch and math.isfinite(float(curve[epoch - 1])):
                    recorded[("restored", key)] = (float(curve[epoch - 1]), float(gflops))
                    added += 1
        return added

    def _cost(self, trial: Trial, result: dict[str, Any]) -> float:
        if self.cost in result:
            return float(result[self.cost])
        config = getattr(trial, "config", None) or {}
        if self.cost in config:
            return float(config[self.cost])
        if not self.multi_objective:
            return math.nan
        raise ValueError(f"trial {trial.trial_id}: no {self.cost!r} in its result or config; "
                         f"multi-objective successive halving needs each trial's cost")

    def _at_rung(self, trial: Trial, result: dict[str, Any], *, decide: bool) -> bool:
        """Record the result at the highest rung it reached (once per rung); whether it goes on."""
        reached = [level for level in self.rungs if result[self.time_attr] >= level]
        if not reached:
            return True
        recorded = self.rungs[reached[-1]]
        key = trial.trial_id
        if key in recorded:
            return True
        top1, gflops = float(result[self._metric]), self._cost(trial, result)
        go_on = True
        if decide:
            others = [(k, t, g) for k, (t, g) in recorded.items()]
            go_on = promote(others, (key, top1, gflops), self.reduction_factor, multi_objective=self.multi_objective,
                            cost_tolerance=self.cost_tolerance)
        if math.isfinite(top1):
            recorded[key] = (top1, gflops)
        return go_on
