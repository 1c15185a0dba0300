"""A search in simulated time: the real searcher, sampler and scheduler, fed tabulated curves instead of training.

`simulate` runs what `search.driver.run_search` runs under Ray, without Ray or training:
the same `search.study.make_sampler` on an in-memory study set up by
`search.study.complete_setup` (its attrs, the paper rows queued), the same
`search.searcher.StudySearcher` (FLOPs measured and over-budget proposals pruned in
``suggest``, COMPLETE/PRUNED/FAIL told in ``on_trial_complete``) and the same scheduler
from `search.tuner.make_scheduler`. Only Tune's loop is replaced, by an event queue that
calls those objects' Tune hooks in Tune's order (ray.tune's ``TuneController``): each
epoch's result goes to ``scheduler.on_trial_result``; on CONTINUE to
``searcher.on_trial_result``, on STOP (or the trainable's last epoch) to both
``on_trial_complete``; a freed worker asks ``searcher.suggest`` for the next trial.

``concurrency`` workers run trials; the clock moves by each epoch's recorded seconds, so
asynchronous rungs see results in the order a real cluster would (ties go to the trial
that started first). What a trial reports comes from ``curve_of(number, params)``: val
top-1 after each epoch (NaN: the loss diverged there) and each epoch's seconds.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

import spaces
from fgmodel.config import RunConfig
from search import plan as plan_mod
from search import study as study_mod
from search import tuner
from search.preflight import Measure
from search.searcher import StudySearcher
from search.spec import StudySpec
from search.trainable import STOP_AFTER


@dataclass(frozen=True)
class Curve:
    """What one trial would report: val top-1 after epoch 1, 2, ... (NaN: diverged) and each epoch's seconds."""

    top1: Sequence[float]
    seconds: Sequence[float]


CurveOf = Callable[[FrozenTrial], Curve]  # a trial the searcher handed out (params, GFLOPs attrs) -> its curve


@dataclass(frozen=True)
class Finished:
    number: int  # the study's trial
    clock: float  # when it ended
    train_seconds: float  # every worker's training so far
    epochs: int  # epochs trained so far, all trials


@dataclass
class Simulated:
    study: optuna.Study
    searcher: StudySearcher
    clock: float = 0.0  # simulated wall seconds until the last trial ended
    train_seconds: float = 0.0  # the seconds of every epoch trained, summed over workers
    epochs: int = 0  # epochs trained, all trials
    finished: list[Finished] = field(default_factory=list)  # in the order the trials ended


@dataclass
class _Running:
    trial: SimpleNamespace  # what the scheduler reads of a Ray trial: trial_id and config
    curve: Curve
    stop_after: int
    epoch: int = 0
    train_seconds: float = 0.0


def simulate(
    spec: StudySpec,
    base: RunConfig,
    curve_of: CurveOf,
    *,
    measure: Measure,
    baseline_gflops: float,
    max_train_seconds: float = math.inf,
    sampler: optuna.samplers.BaseSampler | None = None,
    scheduler: Any = None,
) -> Simulated:
    """Run ``spec``'s search (``trials``, ``concurrency``, sampler, scheduler, paper rows) on ``curve_of``.

    ``max_train_seconds``: no trial starts once the workers have trained that long in all
    (the ones running finish): searches compared at equal compute rather than equal trials.
    ``sampler`` and ``scheduler`` replace the spec's (`search.study.make_sampler`,
    `search.tuner.make_scheduler`): variants of the same classes, set otherwise.
    """
    study = optuna.create_study(directions=study_mod.DIRECTIONS, sampler=sampler or study_mod.make_sampler(spec))
    rows = spaces.paper_rows(spec.space, base) if spec.paper else []
    study_mod.complete_setup(study, spec, base, baseline_gflops, "table", rows, log=lambda line: None)
    trained = spec.trained_epochs(base)
    searcher = StudySearcher(
        study, spec.space, base, measure=measure, baseline_gflops=baseline_gflops, budget=spec.budget,
        epochs=trained, n_trials=spec.trials, log=lambda line: None,
        complete_reason=plan_mod.dead_tail(spec.epochs, trained, spec.dead_lr_fraction) or "completed",
    )
    scheduler = scheduler or tuner.make_scheduler(spec, (), trained)
    out = Simulated(study, searcher)
    events: list[tuple[float, int, str]] = []  # (when the next epoch ends, start order, trial id)
    running: dict[str, _Running] = {}
    order = itertools.count()
    trial_ids = (f"sim_{i:05d}" for i in itertools.count())

    def launch(now: float) -> None:
        while len(running) < int(spec.concurrency) and out.train_seconds < max_train_seconds:
            trial_id = next(trial_ids)
            config = searcher.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return
            number = int(config["number"])
            curve = curve_of(study.get_trials(deepcopy=False)[number])
            run = _Running(SimpleNamespace(trial_id=trial_id, config=config), curve,
                           int(config.get(STOP_AFTER) or len(curve.top1)))
            running[trial_id] = run
            heapq.heappush(events, (now + float(curve.seconds[0]), next(order), trial_id))

    launch(0.0)
    while events:
        now, _, trial_id = heapq.heappop(events)
        run = running[trial_id]
        seconds = float(run.curve.seconds[run.epoch])
        run.epoch += 1
        run.train_seconds += seconds
        out.epochs += 1
        out.train_seconds += seconds
        result = _result(run)
        decision = scheduler.on_trial_result(None, run.trial, result)
        ended = decision == TrialScheduler.STOP or run.epoch >= run.stop_after or "val_top1" not in result
        if not ended:
            searcher.on_trial_result(trial_id, result)
            heapq.heappush(events, (now + float(run.curve.seconds[run.epoch]), next(order), trial_id))
            continue
        if decision != TrialScheduler.STOP:
            searcher.on_trial_result(trial_id, result)  # Tune gives the trainable's last report to both
        scheduler.on_trial_complete(None, run.trial, result)
        searcher.on_trial_complete(trial_id, result)
        del running[trial_id]
        out.clock = now
        out.finished.append(Finished(int(run.trial.config["number"]), now, out.train_seconds, out.epochs))
        launch(now)
    return out


def _result(run: _Running) -> dict[str, Any]:
    """The epoch's report as `search.trainable.train_trial` makes it (Tune adds ``training_iteration``)."""
    top1 = float(run.curve.top1[run.epoch - 1])
    if not math.isfinite(top1):
        return {"status": "non_finite", "reason": f"non-finite loss in epoch {run.epoch}",
                "training_iteration": run.epoch, "trial_id": run.trial.trial_id}
    return {"epoch": run.epoch, "epochs": run.stop_after, "val_top1": top1, "train_seconds": run.train_seconds,
            "training_iteration": run.epoch, "trial_id": run.trial.trial_id}
