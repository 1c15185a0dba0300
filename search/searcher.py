"""A Ray Tune `Searcher` that owns an Optuna study through ask and tell.

Ray's `OptunaSearch` tells Optuna COMPLETE for any trial that reported the metrics, so a
trial the scheduler stopped after two epochs lands on the Pareto front with a partial-training
accuracy. This searcher keeps the study's states honest instead:

* ``suggest``: ``study.ask()``, replay the space on the trial, measure the config's
  GFLOPs and parameters here in the driver (meta device, cached), store them and the
  budget excess as a constraint the sampler learns from. An over-budget config is told
  PRUNED on the spot and the searcher asks again: it never becomes a Ray trial, never
  loads data, never trains a step, and costs milliseconds.
* ``on_trial_result``: keep the per-epoch curve as user attrs (multi-objective trials
  cannot ``report()`` intermediate values), so the dashboard shows progress live
  (`search.live.LiveTrial`, shared with the confirmation).
* ``on_trial_complete``: COMPLETE with ``[val_top1, gflops]`` only when every epoch ran
  (``epochs``: the schedule up to its dead tail, the reason says so); stopped earlier (by
  the scheduler) is PRUNED with its curve; a raised exception or a non-finite loss is FAIL
  with the reason.

``n_trials`` counts trained trials: over-budget proposals (and configs that fail to
build) stay in the study as records but do not count, so a 64-trial study trains 64, however
many drivers share it (the count is the study's, read before each proposal). A
space that offers nothing within budget would then ask forever: after
``MAX_UNTRAINED_IN_A_ROW`` proposals in a row that could not train, the searcher ends the
search and says so (``exhausted``). Each trial's Ray config (`search.trainable.trial_config`)
carries the finished config the driver measured (the trial's ``config`` attr: the worker
trains exactly that), its GFLOPs (the scheduler's second objective) and, for the paper's
Table 1 rows, ``paper_row`` (the scheduler never stops those).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search import Searcher

import spaces
from fgmodel.config import RunConfig, to_dict
from search import attrs
from search import budget as budget_mod
from search import trials as trials_mod
from search.live import METRIC, LiveTrial, error_line
from search.plan import PAPER_ROWS, SEARCHED
from search.preflight import Measure
from search.trainable import trial_config

MAX_UNTRAINED_IN_A_ROW = 50


def counted_trials(study: optuna.Study) -> int:
    """The trials that count toward the requested number (`search.trials.counted`)."""
    return trials_mod.count_counted(study.get_trials(deepcopy=False))


class StudySearcher(Searcher):
    """Proposes configs from ``space`` on ``study``, prunes over-budget ones before Ray sees them."""

    def __init__(
        self,
        study: optuna.Study,
        space: str,
        base: RunConfig,
        *,
        measure: Measure,
        baseline_gflops: float,
        budget: float,
        epochs: int,
        n_trials: int,
        complete_reason: str = "completed",
        log: Callable[[str], None] = print,
    ) -> None:
        super().__init__(metric=METRIC, mode="max")
        self.study = study
        self.space = spaces.get(space)
        self.base = base
        self.measure = measure
        self.baseline_gflops = baseline_gflops
        self.budget = budget
        self.epochs = epochs  # a COMPLETE trial's: the trainable stops there
        self.complete_reason = complete_reason
        self.n_trials = n_trials
        self.log = log
        self.space_name = space
        self.live: dict[str, LiveTrial] = {}
        self.counted = counted_trials(study)
        self.untrained_in_a_row = 0
        self.exhausted: str | None = None  # why the search ended before n_trials, when it did

    # -- suggest ----------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next trial's Ray config, or ``FINISHED`` once the study counts ``n_trials``.

        The count is read from the study before each proposal, not kept here: drivers
        sharing a study (one storage) share the target instead of each training
        ``n_trials`` minus what was counted when it started.
        """
        while True:
            before = self.study.get_trials(deepcopy=False)
            self.counted = trials_mod.count_counted(before)  # the study's count, as counted_trials reads it
            if self.counted >= self.n_trials:
                break
            if self.untrained_in_a_row >= MAX_UNTRAINED_IN_A_ROW:
                self._exhaust()
                break
            trial = self._ask(before)
            self.untrained_in_a_row += 1
            try:
                cfg = self.space(trial, self.base, budget=self.budget)
                gflops, params = self.measure(cfg)
            except Exception as exc:  # a broken space or config must not stop the search
                self._tell(trial, TrialState.FAIL, reason=attrs.CONFIG_ERROR, error=error_line(exc))
                continue
            excess = budget_mod.excess(gflops, self.baseline_gflops, self.budget)
            over = excess > 0
            config = to_dict(cfg)
            _set_attrs(
                trial,
                {
                    attrs.CONFIG: config,
                    attrs.GFLOPS: gflops,
                    attrs.PARAMS: params,
                    attrs.OVER_BUDGET: over,
                    attrs.EPOCHS_RUN: 0,
                    attrs.PHASE: PAPER_ROWS if trial.user_attrs.get(attrs.PAPER_ROW) else SEARCHED,
                },
            )
            trial.set_constraint(budget_mod.CONSTRAINT, excess)
            if over:
                limit = budget_mod.limit(self.baseline_gflops, self.budget)
                self._tell(
                    trial,
                    TrialState.PRUNED,
                    reason=f"over FLOPs budget: {gflops:.4g} GFLOPs > limit {limit:.4g}",
                )
                continue
            self.counted += 1  # as the study now counts it
            self.untrained_in_a_row = 0
            self.live[trial_id] = LiveTrial(trial, gflops, self.epochs)
            return trial_config(f"trial_{trial.number}", trial.number, config, gflops,
                                trial.user_attrs.get(attrs.PAPER_ROW), stop_after=self.epochs)
        return Searcher.FINISHED

    def _ask(self, before: list[FrozenTrial]) -> optuna.Trial:
        """``study.ask()``, failing the trial it made when it raises, then raising.

        Optuna makes the trial (a new one, or a WAITING one it pops) before the sampler's
        ``before_trial`` runs: if that raises, the trial would stay RUNNING until a resume.
        Ours is RUNNING, not in ``before`` or WAITING there, and has no params and no GFLOPs.
        """
        last = max((t.number for t in before), default=-1)
        waiting = {t.number for t in before if t.state == TrialState.WAITING}
        try:
            return self.study.ask()
        except Exception as exc:
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if (t.number > last or t.number in waiting) and not t.params and attrs.GFLOPS not in t.user_attrs:
                    self._fail_unopened(t, exc)
            raise

    def _fail_unopened(self, frozen: FrozenTrial, exc: Exception) -> None:
        """Tell FAIL, as `_tell` does, a trial with no `optuna.Trial` handle: making one would run
        ``before_trial`` again, so the attrs go through the storage."""
        reason = attrs.CONFIG_ERROR  # never trained, not counted: like a config the sampler could not build
        storage = self.study._storage
        for key, value in {attrs.REASON: reason, attrs.ERROR: error_line(exc)}.items():
            storage.set_trial_user_attr(frozen._trial_id, key, value)
        self.study.tell(frozen.number, state=TrialState.FAIL)
        self.log(_summary(frozen.number, TrialState.FAIL, None, reason))

    def _exhaust(self) -> None:
        if self.exhausted is None:
            self.exhausted = (
                f"search ended after {self.counted} of {self.n_trials} trials: {MAX_UNTRAINED_IN_A_ROW} proposals "
                f"in a row from space {self.space_name!r} were over the FLOPs budget (+{self.budget:.0%}) or failed "
                f"to build; widen the budget or narrow the space"
            )
            self.log(self.exhausted)

    # -- results ----------------------------------------------------------------------

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self.live.get(trial_id)
        if live is not None:
            live.record(result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        live = self.live.pop(trial_id, None)
        if live is None:
            return
        if result and result.get("trial_id", trial_id) == trial_id and not error:
            # Tune skips on_trial_result for the result that made the scheduler stop the
            # trial (or the last one): it arrives here.
            live.record(result)
        trial = live.trial
        line = live.failure(error)
        if line is not None:
            self._tell(trial, TrialState.FAIL, reason="raised: " + line.split(":")[0], error=line)
        elif live.non_finite:
            self._tell(trial, TrialState.FAIL, reason=live.non_finite)
        elif live.full:
            top1 = live.curve[-1]
            if math.isfinite(top1):
                self._tell(trial, TrialState.COMPLETE, [top1, live.gflops], reason=self.complete_reason)
            else:
                self._tell(trial, TrialState.FAIL, reason=f"non-finite {METRIC}: {top1}")
        elif not live.curve:
            self._tell(trial, TrialState.PRUNED, reason="stopped before its first epoch")
        else:
            self._tell(trial, TrialState.PRUNED, reason=f"stopped early at epoch {len(live.curve)}")

    def fail_live(self, reason: str) -> list[int]:
        """Tell FAIL for every trial Ray was still running (Ctrl-C); returns their numbers."""
        numbers = []
        for trial_id in list(self.live):
            live = self.live.pop(trial_id)
            self._tell(live.trial, TrialState.FAIL, reason=reason)
            numbers.append(live.trial.number)
        return numbers

    def _tell(
        self,
        trial: optuna.Trial,
        state: TrialState,
        values: list[float] | None = None,
        *,
        reason: str,
        error: str | None = None,
    ) -> None:
        _set_attrs(trial, {attrs.REASON: reason} | ({attrs.ERROR: error} if error is not None else {}))
        self.study.tell(trial, values, state=state)
        self.log(_summary(trial.number, state, values, reason))


def _set_attrs(trial: optuna.Trial, values: dict[str, Any]) -> None:
    for key, value in values.items():
        trial.set_user_attr(key, value)


def _summary(number: int, state: TrialState, values: list[float] | None, reason: str) -> str:
    if values is not None:
        return f"trial {number:3d} {state.name:8s} val_top1 {values[0]:.4f}  {values[1]:.4g} GFLOPs"
    return f"trial {number:3d} {state.name:8s} {reason}"
