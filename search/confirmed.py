"""What a confirmation trains and what its records say; `search.confirm` runs it.

Plain functions on the search's trials and the confirm study's records, so tests run them
on hand-made ones and the report and the export read confirmations without the run
module: which trials to confirm (`choose_candidates`), how (`Design`: a fixed number of
seeds, or a race, `search.racing`), which (trial, seed) runs remain (`progress`) and
with which config (`run_config`), and the confirmed means with their front, picks and
cost (`summarize`). A seed whose loss diverged is a result, not a gap: the config is unstable,
shown as such and kept out of the front of the means, the picks and the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.stats import unpack_hits
from search import attrs, budget, pareto, racing, stats
from search.racing import Race, Run
from search.trials import gflops_of

T = TypeVar("T")
DEFAULT_TOP, DEFAULT_SEEDS = 4, 3  # the confirm block's defaults (a key left out)
BASELINE_ROW = "baseline"  # the paper_row label of Table 1's first row
BASELINE_ROLE = "baseline"  # the role of the trial every paired difference is taken to
NON_FINITE = "non_finite"  # the status attr of a run whose loss diverged: final, not run again


# -- what to confirm (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    number: int  # the search trial it re-trains
    role: str  # "front", "next best", "knee", "baseline", "best paper row", joined by ", "
    gflops: float
    paper_row: str | None = None


def _top1(t: FrozenTrial) -> float:
    return float(t.values[0])


def _by_accuracy(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return sorted(trials, key=lambda t: (-_top1(t), gflops_of(t), t.number))


def choose_candidates(trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial], top: int) -> list[Candidate]:
    """The search trials to confirm, in that order: the top of the front (topped up), the front's knee, the
    baseline, the best paper row.

    ``trials``: all of the study's trials; ``front``: its feasible Pareto front
    (`search.pareto.pareto_front`). The knee of the single-run front is there so that the
    knee pick on the means has the cheap end of the front to choose from, not only its
    most accurate part. A trial appears once, with its roles joined (``"front, baseline"``).
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
    if front:
        knee = pareto.pick([pareto.Point(t.number, _top1(t), gflops_of(t)) for t in front], "knee").number
        add(next(t for t in front if t.number == knee), "knee")
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
class Design:
    """How a confirmation runs: ``top`` front trials (and the others of `choose_candidates`), ``seeds`` new
    seeds each, or under ``race`` at most ``seeds`` (`search.racing`, curtailed at ``futility``); the seeds
    follow the study's ``seed``."""

    top: int = DEFAULT_TOP
    seeds: int = DEFAULT_SEEDS
    race: bool = False
    seed: int = 0
    level: float = stats.LEVEL
    futility: float = racing.FUTILITY

    @classmethod
    def of(cls, block: Mapping[str, Any] | None, seed: int = 0, **given: Any) -> Design:
        """The design: ``given`` (None: not given), else the spec's ``confirm:`` block, else the defaults."""
        keys = {"top": DEFAULT_TOP, "seeds": DEFAULT_SEEDS, "race": False, "futility": racing.FUTILITY}
        chosen = {k: v if (v := given.get(k)) is not None else (block or {}).get(k, default)
                  for k, default in keys.items()}
        return cls(int(chosen["top"]), int(chosen["seeds"]), bool(chosen["race"]), seed,
                   futility=float(chosen["futility"]))

    @property
    def seed_list(self) -> list[int]:
        return confirm_seeds(self.seed, self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {"top": self.top, "seeds": self.seeds, "race": self.race, "seed": self.seed, "level": self.level,
                "futility": self.futility}


def design_of(study: optuna.Study, confirm: optuna.Study | None) -> Design:
    """The design of the confirm study's last run (its ``design`` attr), else the search spec's block, else defaults."""
    stored = confirm.user_attrs.get(attrs.DESIGN) if confirm is not None else None
    if stored:
        return Design(**{"futility": 0.0, **stored})  # a race stored before curtailment ran without it
    spec = study.user_attrs.get(attrs.SPEC) or {}
    return Design.of(spec.get("confirm"), int(spec.get("seed", 0)))


def is_final(record: FrozenTrial) -> bool:
    """A record whose (trial, seed) needs no new run: COMPLETE, or FAIL from a non-finite loss."""
    return record.state == TrialState.COMPLETE or is_diverged(record)


def is_diverged(record: FrozenTrial) -> bool:
    return record.state == TrialState.FAIL and record.user_attrs.get(attrs.STATUS) == NON_FINITE


def left_running(records: Sequence[FrozenTrial]) -> list[int]:
    """Confirm-study trial numbers left RUNNING: one process at a time writes the confirm study, so a dead one's."""
    return [r.number for r in records if r.state == TrialState.RUNNING]


def own_runs(trials: Sequence[FrozenTrial], candidates: Sequence[Candidate], epochs: int) -> dict[int, float]:
    """Candidate -> the search's own run of it (every search trial trains on the study's seed), when that run
    trained all ``epochs`` of a confirmation run: a race's noise estimate from round 1 on, never a mean."""
    by_number = {t.number: t for t in trials}
    return {c.number: _top1(t) for c in candidates if (t := by_number.get(c.number)) is not None
            and t.state == TrialState.COMPLETE and t.user_attrs.get(attrs.EPOCHS_RUN) == epochs}


def progress(design: Design, candidates: Sequence[Candidate], records: Sequence[FrozenTrial],
             step: float | None = None, own: dict[int, float] | None = None) -> Race:
    """Where the confirmation stands: its rounds and stops under a race, and the runs it still lacks.

    The fixed design lacks every (candidate, seed) pair without a final record, in one go;
    a race lacks the runs of its current round (`search.racing.race`). ``step``: one image
    of the validation split (1 / its size), the floor of the race's noise; ``own``: the
    search's own runs of the candidates (`own_runs`), in the race's noise estimate.
    """
    runs, diverged = confirmed_runs(records), diverged_runs(records)
    if design.race:
        entrants = [racing.Entrant(c.number, c.gflops, is_baseline(c.role)) for c in candidates]
        return racing.race(entrants, design.seed_list, runs, diverged, design.level, step, own=own,
                           futility=design.futility)
    return racing.fixed([c.number for c in candidates], design.seed_list, runs, diverged)


def split_of(config: dict[str, Any]) -> int:
    """The validation split a config trains on: its ``data.split_seed``, or its ``optim.seed`` when that is None."""
    split = config["data"].get("split_seed")
    return int(config["optim"]["seed"] if split is None else split)


def run_config(trial: FrozenTrial, seed: int) -> dict[str, Any]:
    """The search trial's own config (what export would write) with a new seed, on the split it was selected on."""
    config = {section: dict(values) for section, values in trial.user_attrs[attrs.CONFIG].items()}
    config["data"]["split_seed"] = split_of(config)  # pinned before optim.seed changes under it
    config["optim"]["seed"] = seed
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
    top1: stats.Estimate  # mean and standard error over the seeds (floored at one image's rounding)
    vs_baseline: stats.Estimate | None  # difference to the baseline: the block design's (`stats.pooled`)
    diverged: tuple[int, ...] = ()  # seeds whose loss diverged: the config is unstable
    stopped: str | None = None  # why the race stopped it, after which round
    # the difference to the baseline and its image x seed bootstrap interval (`stats.image_seed_bootstrap`),
    # when the runs recorded their per-image hits
    vs_baseline_images: tuple[float, float, float] | None = None

    @property
    def stable(self) -> bool:
        return not self.diverged


@dataclass(frozen=True)
class Confirmed:
    """What the confirm study says about the search's points, in numbers the report and the export share."""

    points: dict[int, ConfirmedPoint]  # by search trial number
    baseline: int | None
    front: list[int]  # on the front of the means (feasible and stable only), cheapest first
    picks: dict[str, int]  # "max-acc" / "knee" -> search trial number, on the means' front
    verdict: str  # the plain sentence of `stats.verdict`, and which configs diverged
    design: Design = Design()
    candidates: list[int] = field(default_factory=list)  # what the design confirms today (the front may have moved)
    rounds: list[racing.Round] = field(default_factory=list)  # a race's complete rounds
    missing: list[Run] = field(default_factory=list)  # the runs the design still lacks: incomplete when any
    trained: int = 0  # final runs of the candidates (COMPLETE or diverged)

    @property
    def max_seeds(self) -> int:
        return max((p.top1.n for p in self.points.values()), default=0)

    @property
    def fixed_runs(self) -> int:
        """The runs of the fixed design for the same candidates: every one with every seed."""
        return len(self.candidates) * self.design.seeds

    def cost(self) -> str:
        """One line: the runs trained against the fixed design's, and what the race stopped."""
        n, fixed = self.trained, self.fixed_runs
        if self.design.race:
            saved = f"{fixed - n} saved" if not self.missing else f"{len(self.missing)} to run in this round"
            curtailed = f", curtailed at {self.design.futility:.0%}" if self.design.futility else ""
            line = (f"Racing (at most {self.design.seeds} seeds, {self.design.level:.0%} t-intervals{curtailed}): "
                    f"{len(self.rounds)} rounds, {n} runs trained against {fixed} for the fixed design "
                    f"({len(self.candidates)} candidates x {self.design.seeds} seeds): {saved}")
        else:
            line = (f"Fixed design: {n} of {fixed} runs trained ({len(self.candidates)} candidates x "
                    f"{self.design.seeds} seeds)")
        stops = [f"trial {p.number} ({p.stopped})" for p in self.points.values() if p.stopped]
        return line + (". Stopped: " + "; ".join(stops) if stops else "") + "."

    def incomplete(self) -> str:
        """Why picks on these means are premature (empty when the design has every run)."""
        if not self.missing:
            return ""
        lacking = sorted({r.confirms for r in self.missing})
        return (f"the confirmation is incomplete: {'trial' if len(lacking) == 1 else 'trials'} "
                f"{', '.join(map(str, lacking))} {'lacks' if len(lacking) == 1 else 'lack'} runs "
                f"({len(self.missing)} to train{' in the current round' if self.design.race else ''})")


def _of_complete(records: Sequence[FrozenTrial], value: Callable[[FrozenTrial], T | None]) -> dict[int, dict[int, T]]:
    """Search trial -> {seed: ``value`` of its COMPLETE record} (the first, should a pair have two; None: left out)."""
    out: dict[int, dict[int, T]] = {}
    for r in sorted(records, key=lambda r: r.number):
        if r.state == TrialState.COMPLETE and attrs.CONFIRMS in r.user_attrs and (v := value(r)) is not None:
            out.setdefault(int(r.user_attrs[attrs.CONFIRMS]), {}).setdefault(int(r.user_attrs[attrs.SEED]), v)
    return out


def confirmed_runs(records: Sequence[FrozenTrial]) -> dict[int, dict[int, float]]:
    """Search trial -> {seed: validation top-1} of the COMPLETE records."""
    return _of_complete(records, lambda r: float(r.values[0]))


def confirmed_hits(records: Sequence[FrozenTrial]) -> dict[int, dict[int, np.ndarray]]:
    """Search trial -> {seed: per-image top-1 hits} of the COMPLETE records that recorded them."""
    return _of_complete(records, lambda r: unpack_hits(h) if (h := r.user_attrs.get(attrs.VAL_HITS)) else None)


def diverged_runs(records: Sequence[FrozenTrial]) -> dict[int, set[int]]:
    """Search trial -> the seeds whose run diverged (a non-finite loss) and never completed."""
    runs = confirmed_runs(records)
    out: dict[int, set[int]] = {}
    for r in records:
        if is_diverged(r) and attrs.CONFIRMS in r.user_attrs:
            n, seed = int(r.user_attrs[attrs.CONFIRMS]), int(r.user_attrs[attrs.SEED])
            if seed not in runs.get(n, {}):
                out.setdefault(n, set()).add(seed)
    return out


def _unstable(points: Sequence[ConfirmedPoint]) -> str:
    """The sentence on configs with diverged seeds (empty when none)."""
    parts = [f"trial {p.number} diverged on seed{'s' if len(p.diverged) > 1 else ''} "
             f"{', '.join(map(str, p.diverged))} ({p.top1.n} of {p.top1.n + len(p.diverged)} runs finished)"
             for p in points if p.diverged]
    if not parts:
        return ""
    text = "; ".join(parts)
    return f" {text[0].upper()}{text[1:]}: unstable, so kept out of the front, the picks and the verdict."


def summarize(study: optuna.Study, confirm: optuna.Study | None) -> Confirmed | None:
    """The confirmed points of ``study`` (None when no confirmation run has ended yet)."""
    if confirm is None:
        return None
    records = confirm.get_trials(deepcopy=False)
    runs, diverged = confirmed_runs(records), diverged_runs(records)
    if not runs and not diverged:
        return None
    all_trials = study.get_trials(deepcopy=False)
    trials = {t.number: t for t in all_trials}
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    step = 1.0 / val_images if val_images else None
    design = design_of(study, confirm)
    candidates = choose_candidates(all_trials, pareto.pareto_front(study), design.top)
    epochs = study.user_attrs.get(attrs.TRAINED_EPOCHS) or (study.user_attrs.get(attrs.SPEC) or {}).get("epochs")
    state = progress(design, candidates, records, step,
                     own_runs(all_trials, candidates, int(epochs)) if epochs else None)
    latest = {int(r.user_attrs[attrs.CONFIRMS]): r for r in sorted(records, key=lambda r: r.number)
              if attrs.CONFIRMS in r.user_attrs}
    baseline = next((n for n, r in latest.items() if is_baseline(str(r.user_attrs.get(attrs.ROLE, "")))
                     and n in runs and n not in diverged), None)
    fit = stats.pooled({n: seeds for n, seeds in runs.items() if n not in diverged}, step)
    hits = confirmed_hits(records)

    def vs_baseline(n: int) -> stats.Estimate | None:
        if baseline is None:
            return None
        if fit is not None and n in fit.index:
            return fit.difference(n, baseline)
        return stats.floor_se(stats.paired_difference(runs.get(n, {}), runs[baseline]), step)

    points = {}
    for n in sorted(set(runs) | set(diverged)):
        record, trial, seeds = latest[n], trials.get(n), runs.get(n, {})
        stop = state.stops.get(n)
        points[n] = ConfirmedPoint(
            number=n, role=str(record.user_attrs.get(attrs.ROLE, "")), paper_row=record.user_attrs.get(attrs.PAPER_ROW),
            gflops=float(record.values[1]) if record.values else float(record.user_attrs[attrs.GFLOPS]),
            feasible=trial is None or budget.is_feasible(trial), runs=dict(sorted(seeds.items())),
            top1=stats.floor_se(stats.mean_se(list(seeds.values())), step, terms=1),
            vs_baseline=vs_baseline(n),
            diverged=tuple(sorted(diverged.get(n, ()))),
            stopped=f"stopped after round {stop.round}: {stop.reason}" if stop else None,
            vs_baseline_images=(stats.image_seed_bootstrap(hits.get(n, {}), hits[baseline], design.level)
                                if baseline is not None and n != baseline and baseline in hits else None),
        )
    judged = {n: p for n, p in points.items() if p.feasible and p.stable and p.runs}
    means = [pareto.Point(p.number, p.top1.mean, p.gflops) for p in judged.values()]
    verdict = stats.verdict({n: p.runs for n, p in judged.items()}, baseline, design.level, step)
    numbers = [c.number for c in candidates]
    return Confirmed(points, baseline, [p.number for p in pareto.front(means)], pareto.picks(means),
                     verdict + _unstable(list(points.values())), design, numbers, state.rounds, state.todo,
                     racing.trained(numbers, design.seed_list, runs, diverged))
