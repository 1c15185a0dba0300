"""The progress line a long search prints: counts, best top-1 within budget, elapsed time, time left, data wait.

Pure functions over trial states and durations; the driver prints the line at least every
30 s (`Reporter`, ticked by a Tune callback). The estimate of the time left is deliberately
simple: the mean duration of the trials that trained (those the scheduler stopped
included, since the remaining trials will be cut in the same proportion) times the work
still to do, spread over the concurrent slots. The data wait is the running trials' last
epoch's share spent waiting for their loaders (`fgmodel.fit.EpochReport.data_wait`): high,
the trials are CPU-bound (more ``cpus_per_trial``, or ``data.cache_dir``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import attrs
from search.budget import is_feasible
from search.trials import count_counted, cut_short

EVERY_S = 30.0


@dataclass(frozen=True)
class Counts:
    complete: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0


def count(trials: Iterable[FrozenTrial]) -> Counts:
    """Trials by state. WAITING ones are not started, and FAIL ones the driver cut short (a dead
    driver, Ctrl-C) are run again: neither is counted."""
    n = {state: 0 for state in TrialState}
    for t in trials:
        if not cut_short(t):
            n[t.state] += 1
    return Counts(n[TrialState.COMPLETE], n[TrialState.RUNNING], n[TrialState.PRUNED], n[TrialState.FAIL])


def best_within_budget(trials: Iterable[FrozenTrial]) -> float | None:
    """The highest validation top-1 (first objective) of the COMPLETE trials that meet every constraint."""
    values = [
        t.values[0]
        for t in trials
        if t.state == TrialState.COMPLETE and t.values and is_feasible(t)
    ]
    return max(values) if values else None


def trained_durations(trials: Iterable[FrozenTrial]) -> list[float]:
    """Seconds of each finished trial that trained at least one epoch (over-budget ones cost nothing; one a
    dead driver left ended when a resume failed it, so its duration says nothing)."""
    return [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in trials
        if t.state.is_finished() and t.datetime_start and t.datetime_complete
        and t.user_attrs.get(attrs.EPOCHS_RUN, 0) > 0 and not cut_short(t)
    ]


def eta_seconds(
    durations: Sequence[float], remaining: float, concurrency: int, running_elapsed: Sequence[float] = ()
) -> float | None:
    """Seconds left: the running trials' expected rest plus ``remaining`` trials of mean duration, over
    ``concurrency`` slots, and never less than the longest single piece. None before any trial finished."""
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    rests = [max(mean - e, 0.0) for e in running_elapsed]
    work = sum(rests) + remaining * mean
    longest = max([*rests, mean if remaining > 0 else 0.0])
    return max(work / max(concurrency, 1), longest)


def format_duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h07m``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def data_wait(trials: Iterable[FrozenTrial]) -> float | None:
    """The mean share of their last epoch the RUNNING trials waited for data (None before any reported one)."""
    last = [t.user_attrs[attrs.DATA_WAIT][-1] for t in trials
            if t.state == TrialState.RUNNING and t.user_attrs.get(attrs.DATA_WAIT)]
    return sum(last) / len(last) if last else None


def progress_line(counts: Counts, best_top1: float | None, elapsed_s: float, eta_s: float | None,
                  wait: float | None = None) -> str:
    """One line: ``[12m05s] 7 complete, 2 running, 5 pruned, 1 failed; best val_top1 within budget 0.8123;
    about 25m00s left; data wait 12%``."""
    best = f"{best_top1:.4f}" if best_top1 is not None and math.isfinite(best_top1) else "none yet"
    left = f"about {format_duration(eta_s)} left" if eta_s is not None else "time left unknown"
    return (
        f"[{format_duration(elapsed_s)}] {counts.complete} complete, {counts.running} running, "
        f"{counts.pruned} pruned, {counts.failed} failed; best val_top1 within budget {best}; {left}"
        + (f"; data wait {wait:.0%}" if wait is not None else "")
    )


class Reporter:
    """Prints `progress_line` for ``study`` at most every ``every`` seconds (`tick`, called often by the tuner).

    ``n_trials`` is the searcher's target of trained trials (`search.trials.counted`: over-budget
    proposals cost nothing and do not count); the time left counts the trials still to
    train and the running ones' rest.
    """

    def __init__(self, study: optuna.Study, n_trials: int, concurrency: int, log: Callable[[str], None] = print,
                 every: float = EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.study = study
        self.n_trials = n_trials
        self.concurrency = concurrency
        self.log = log
        self.every = every
        self.clock = clock
        self.start = self.last = clock()

    def tick(self) -> str | None:
        now = self.clock()
        if now - self.last < self.every:
            return None
        self.last = now
        line = self.line(now - self.start)
        self.log(line)
        return line

    def line(self, elapsed_s: float, wall: datetime | None = None) -> str:
        trials = self.study.get_trials(deepcopy=False)
        wall = wall or datetime.now()  # Optuna's datetime_start is local and naive
        running = [(wall - t.datetime_start).total_seconds()
                   for t in trials if t.state == TrialState.RUNNING and t.datetime_start]
        remaining = max(self.n_trials - count_counted(trials), 0)
        eta = eta_seconds(trained_durations(trials), remaining, self.concurrency, running)
        return progress_line(count(trials), best_within_budget(trials), elapsed_s, eta, data_wait(trials))
