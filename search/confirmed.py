"""What a confirmation trains and what its records say; `search.confirm` runs it.

Plain functions on the search's trials and the confirm study's records, so tests run them
on hand-made ones and the report and the export read confirmations without the run
module: which trials to confirm (`choose_candidates`), which (trial, seed) runs remain
(`plan`) and with which config (`run_config`), and the confirmed means with their front
and picks (`summarize`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import attrs, budget, stats
from search.trials import gflops_of

BASELINE_ROW = "baseline"  # the paper_row label of Table 1's first row
BASELINE_ROLE = "baseline"  # the role of the trial every paired difference is taken to
NON_FINITE = "non_finite"  # the status attr of a run whose loss diverged: final, not run again


# -- what to confirm (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    number: int  # the search trial it re-trains
    role: str  # "front", "next best", "baseline", "best paper row"
    gflops: float
    paper_row: str | None = None


def _top1(t: FrozenTrial) -> float:
    return float(t.values[0])


def _by_accuracy(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return sorted(trials, key=lambda t: (-_top1(t), gflops_of(t), t.number))


def choose_candidates(trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial], top: int) -> list[Candidate]:
    """The search trials to confirm, in that order: the top of the front (topped up), the baseline, the best paper row.

    ``trials``: all of the study's trials; ``front``: its feasible Pareto front
    (`search.pareto.pareto_front`). A trial appears once, with its roles joined
    (``"front, baseline"``).
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE and budget.is_feasible(t)]
    chosen: dict[int, Candidate] = {}

    def add(t: FrozenTrial, role: str) -> None:
        if t.number in chosen:
            c = chosen[t.number]
            chosen[t.number] = Candidate(c.number, f"{c.role}, {role}", c.gflops, c.paper_row)
        else:
            chosen[t.number] = Candidate(t.number, role, gflops_of(t), t.user_attrs.get(attrs.PAPER_ROW))

    for t in _by_accuracy(front)[:top]:
        add(t, "front")
    on_front = {t.number for t in front}
    for t in _by_accuracy([t for t in complete if t.number not in on_front])[: max(top - len(chosen), 0)]:
        add(t, "next best")
    baseline = _baseline_trial(trials)
    if baseline is not None:
        add(baseline, BASELINE_ROLE)
    rows = [t for t in complete if t.user_attrs.get(attrs.PAPER_ROW) not in (None, BASELINE_ROW)]
    if rows:
        add(_by_accuracy(rows)[0], "best paper row")
    return list(chosen.values())


def is_baseline(role: str) -> bool:
    return BASELINE_ROLE in role.split(", ")


def _baseline_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The baseline row: its COMPLETE run, else its latest run that has a config and a GFLOPs figure.

    A retry of a row cut short carries the row's label too, hence the choice among several.
    """
    rows = [t for t in trials if t.user_attrs.get(attrs.PAPER_ROW) == BASELINE_ROW and attrs.CONFIG in t.user_attrs
            and (t.state == TrialState.COMPLETE or attrs.GFLOPS in t.user_attrs)]
    if not rows:
        return None
    return max(rows, key=lambda t: (t.state == TrialState.COMPLETE, t.number))


def confirm_seeds(study_seed: int, n: int) -> list[int]:
    """``n`` seeds none of which is the search's own (``study_seed``)."""
    return [study_seed + 1 + i for i in range(n)]


@dataclass(frozen=True)
class Run:
    confirms: int
    seed: int


@dataclass
class Plan:
    todo: list[Run] = field(default_factory=list)  # to train now
    done: list[Run] = field(default_factory=list)  # already recorded, kept
    left_running: list[int] = field(default_factory=list)  # confirm-study trial numbers a dead process left RUNNING


def is_final(record: FrozenTrial) -> bool:
    """A record whose (trial, seed) needs no new run: COMPLETE, or FAIL from a non-finite loss."""
    return record.state == TrialState.COMPLETE or (
        record.state == TrialState.FAIL and record.user_attrs.get(attrs.STATUS) == NON_FINITE)


def plan(candidates: Sequence[Candidate], seeds: Sequence[int], records: Sequence[FrozenTrial]) -> Plan:
    """Which (trial, seed) runs remain, given the confirm study's ``records``.

    Candidates in their order, each with every seed in order; a pair is done when a
    record of it `is_final`. Records left RUNNING are listed for failing (one confirm
    process at a time writes the confirm study, so a RUNNING record is a dead process's).
    """
    final = {(r.user_attrs.get(attrs.CONFIRMS), r.user_attrs.get(attrs.SEED)) for r in records if is_final(r)}
    out = Plan(left_running=[r.number for r in records if r.state == TrialState.RUNNING])
    for c in candidates:
        for s in seeds:
            (out.done if (c.number, s) in final else out.todo).append(Run(c.number, s))
    return out


def run_config(trial: FrozenTrial, seed: int, split_seed: int) -> dict[str, Any]:
    """The search trial's own config (what export would write), with a new seed on the search's split."""
    config = {section: dict(values) for section, values in trial.user_attrs[attrs.CONFIG].items()}
    config["optim"]["seed"] = seed
    config["data"]["split_seed"] = split_seed
    return config


# -- reading the runs back (the report and the export) ---------------------------------------


@dataclass(frozen=True)
class ConfirmedPoint:
    number: int  # the search trial
    role: str
    paper_row: str | None
    gflops: float
    feasible: bool
    runs: dict[int, float]  # seed -> validation top-1 of its COMPLETE run
    top1: stats.Estimate  # mean and standard error over the seeds
    vs_baseline: stats.Estimate | None  # paired difference to the baseline over shared seeds


@dataclass(frozen=True)
class Confirmed:
    """What the confirm study says about the search's points, in numbers the report and the export share."""

    points: dict[int, ConfirmedPoint]  # by search trial number
    baseline: int | None
    front: list[int]  # on the front of the means (feasible only), cheapest first
    picks: dict[str, int]  # "max-acc" / "knee" -> search trial number, on the means' front
    verdict: str  # the plain sentence of `stats.verdict`

    @property
    def max_seeds(self) -> int:
        return max((p.top1.n for p in self.points.values()), default=0)


def confirmed_runs(records: Sequence[FrozenTrial]) -> dict[int, dict[int, float]]:
    """Search trial -> {seed: validation top-1} of the COMPLETE records (the first, should a pair have two)."""
    runs: dict[int, dict[int, float]] = {}
    for r in sorted(records, key=lambda r: r.number):
        if r.state == TrialState.COMPLETE and attrs.CONFIRMS in r.user_attrs:
            runs.setdefault(int(r.user_attrs[attrs.CONFIRMS]), {}).setdefault(int(r.user_attrs[attrs.SEED]),
                                                                                float(r.values[0]))
    return runs


def summarize(study: optuna.Study, confirm: optuna.Study | None) -> Confirmed | None:
    """The confirmed points of ``study`` (None when no confirmation run is COMPLETE yet)."""
    if confirm is None:
        return None
    records = confirm.get_trials(deepcopy=False)
    runs = confirmed_runs(records)
    if not runs:
        return None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    latest = {int(r.user_attrs[attrs.CONFIRMS]): r for r in sorted(records, key=lambda r: r.number)
              if attrs.CONFIRMS in r.user_attrs}
    baseline = next((n for n, r in latest.items() if is_baseline(str(r.user_attrs.get(attrs.ROLE, ""))) and n in runs),
                    None)
    points = {}
    for n, seeds in sorted(runs.items()):
        record, trial = latest[n], trials.get(n)
        points[n] = ConfirmedPoint(
            number=n, role=str(record.user_attrs.get(attrs.ROLE, "")), paper_row=record.user_attrs.get(attrs.PAPER_ROW),
            gflops=float(record.values[1]) if record.values else float(record.user_attrs[attrs.GFLOPS]),
            feasible=trial is None or budget.is_feasible(trial), runs=dict(sorted(seeds.items())),
            top1=stats.mean_se(list(seeds.values())),
            vs_baseline=stats.paired_difference(seeds, runs[baseline]) if baseline is not None else None,
        )
    means = [stats.Point(p.number, p.top1.mean, p.gflops, p.feasible) for p in points.values()]
    verdict = stats.verdict({n: p.runs for n, p in points.items() if p.feasible}, baseline)
    return Confirmed(points, baseline, [p.number for p in stats.front(means)], stats.picks(means), verdict)
