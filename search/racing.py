"""Racing a confirmation: seeds in rounds, and a candidate stops once its remaining seeds would change nothing.

F-Race (Birattari et al. 2002) and Hoeffding races (Maron & Moore 1994), on a front of
two objectives, with the curtailment of a sequential trial (Lan, Simon & Halperin 1982).
Round k gives seed k to every candidate still in the race; after it, a candidate stops
when either

* it is clearly dominated: another one in the race, no costlier in GFLOPs, is clearly more
  accurate (the lower end of the Student-t interval of their difference is above zero),
  so it cannot be on the front of the true means; or
* it is futile: with every seed run, the fixed design would pick it (max-acc or knee) in
  only a few of the simulated completions of its missing runs (`chances`); the least
  likely stop first, while their chances together stay under ``futility``.

A candidate with a diverged seed stops too (it is kept out of the picks). The baseline,
the reference of every paired difference, stays while any other candidate races. The
race is over after the last seed, or from round 2 (the finalists keep two new seeds, what
the report's intervals need) when at most one candidate is undecided or when the fixed
design would pick what the race picks now in at least 1 - ``futility`` of the completions.
The first rule answers to the truth, the second to the fixed design: the race is a cheaper
way to the fixed design's picks, and `bench/racing.py` measures how often it gets them.

The seed noise is pooled over the candidates (`search.stats.pooled`: top-1 = config +
seed + error, one error variance for all, as the report's verdict judges them): with 2
seeds a pair alone has 1 degree of freedom (a t quantile of 12.7), a pool of six
candidates has 5 (2.57). One new seed alone has none, so the search's own runs of the
candidates (all on the study's seed) join the noise estimate as one more block: round 1
can stop a candidate too. They never enter a mean: selected for being high, their
residuals only widen the intervals (`bench/racing.py` measures what they save).

Everything is a function of the records (which runs ended, with what top-1; the
completions come from a generator seeded by the round), so a resumed confirmation, the
report and the export all recompute the same rounds and stops.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fgmodel.stats import LEVEL
from search import pareto
from search.stats import Estimate, Pooled, pooled

FUTILITY = 0.15  # the chance of changing the fixed design's picks a round may give up to stop candidates
DRAWS = 1000  # simulated completions of the fixed design per round


@dataclass(frozen=True)
class Run:
    confirms: int  # the search trial it re-trains
    seed: int


@dataclass(frozen=True)
class Entrant:
    number: int  # the search trial
    gflops: float
    baseline: bool = False


@dataclass(frozen=True)
class Stop:
    number: int
    round: int  # 1-based: it ran this round, and no later one
    reason: str  # one line


@dataclass(frozen=True)
class Round:
    seed: int
    ran: tuple[int, ...]
    stopped: tuple[Stop, ...]


@dataclass
class Race:
    rounds: list[Round] = field(default_factory=list)  # the rounds every entrant of which has a final run
    todo: list[Run] = field(default_factory=list)  # the runs the current round lacks (empty: over)
    alive: list[int] = field(default_factory=list)  # still racing (or finished the race without a stop)
    stops: dict[int, Stop] = field(default_factory=dict)
    settled: float | None = None  # after the last round: the chance the fixed design would pick the same

    @property
    def over(self) -> bool:
        return not self.todo


def _pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def dominated(entrants: Sequence[Entrant], racing: Collection[int], fit: Pooled, level: float = LEVEL,
              by_cost: bool = True) -> dict[int, str]:
    """Racing entrant -> why it is clearly dominated: a racing entrant no costlier is ahead beyond the interval.

    ``by_cost=False`` drops "no costlier": single-objective F-Race, where anything clearly
    below the leader stops, the cheap end of the front too (`bench/racing.py` compares both).
    """
    racing_entrants = [e for e in entrants if e.number in racing and e.number in fit.index]
    out: dict[int, str] = {}
    for e in racing_entrants:
        best: tuple[float, int, Estimate] | None = None
        for other in racing_entrants:
            if other.number == e.number or (by_cost and other.gflops > e.gflops):
                continue
            d = fit.difference(other.number, e.number)
            low = d.mean - d.halfwidth(level)
            if low > 0 and (best is None or low > best[0]):
                best = (low, other.number, d)
        if best is not None:
            low, ahead, d = best
            out[e.number] = (f"trial {ahead}{', no costlier,' if by_cost else ''} is ahead by {_pp(d.mean)} pp "
                             f"({level:.0%} t-interval "
                             f"{_pp(low)} to {_pp(d.mean + d.halfwidth(level))}, seed noise pooled, {fit.df} df)")
    return out


def completions(entrants: Sequence[Entrant], seeds: Sequence[int], runs: Mapping[int, Mapping[int, float]],
                fit: Pooled, step: float | None, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws x entrants): each entrant's mean over all ``seeds``, the runs it has as they are, the rest drawn.

    A missing run is drawn from the block design's predictive distribution: the error's
    variance from its posterior (``df`` x sd^2 / chi^2(df), heavy-tailed with few degrees of
    freedom), the config's and the seed's effects from their estimates and covariance at
    that variance, plus one run's error, rounded to one image. A seed no entrant has run
    moves every mean alike and is left out: no pick depends on it.
    """
    numbers = [e.number for e in entrants]
    scale = np.sqrt(fit.df / rng.chisquare(fit.df, size=draws))  # sd / the fit's sd, one per draw
    w, v = np.linalg.eigh(fit.cov)
    effects = fit.beta + scale[:, None] * (rng.standard_normal((draws, len(w))) @ (v * np.sqrt(np.clip(w, 0, None))).T)
    total = np.zeros((draws, len(numbers)))
    for i, n in enumerate(numbers):
        for s in seeds:
            if s in runs.get(n, {}):
                total[:, i] += runs[n][s]
                continue
            value = effects[:, fit.index[n]] + (effects[:, fit.seed_index[s]] if s in fit.seed_index else 0.0)
            value = value + scale * fit.sd * rng.standard_normal(draws)
            total[:, i] += np.clip(np.round(value / step) * step if step else value, 0.0, 1.0)
    return total / len(seeds)


def chances(entrants: Sequence[Entrant], seeds: Sequence[int], runs: Mapping[int, Mapping[int, float]],
            fit: Pooled, step: float | None, draws: int, rng: np.random.Generator) -> tuple[dict[int, float], float]:
    """(entrant -> the chance the fixed design picks it, the chance it picks what the runs so far pick).

    The fixed design runs every seed of every entrant and picks (max-acc and knee) on the
    means: `completions` draws what its missing runs could bring.
    """
    gflops, numbers = [e.gflops for e in entrants], [e.number for e in entrants]
    final = pareto.picks_many(completions(entrants, seeds, runs, fit, step, draws, rng), gflops, numbers)
    now = pareto.picks([pareto.Point(e.number, statistics.fmean(runs[e.number].values()), e.gflops) for e in entrants])
    picked = {n: float(np.mean((final["max-acc"] == i) | (final["knee"] == i))) for i, n in enumerate(numbers)}
    same = (final["max-acc"] == numbers.index(now["max-acc"])) & (final["knee"] == numbers.index(now["knee"]))
    return picked, float(np.mean(same))


def futile(picked: Mapping[int, float], racing: Collection[int], futility: float) -> dict[int, float]:
    """The racing entrants to stop, least likely picked first, while their chances together stay under ``futility``."""
    out: dict[int, float] = {}
    total = 0.0
    for n in sorted(racing, key=lambda n: (picked.get(n, 1.0), n)):
        total += picked.get(n, 1.0)
        if total >= futility:
            break
        out[n] = total
    return out


def race(entrants: Sequence[Entrant], seeds: Sequence[int], runs: Mapping[int, Mapping[int, float]],
         diverged: Mapping[int, Collection[int]], level: float = LEVEL, step: float | None = None,
         by_cost: bool = True, own: Mapping[int, float] | None = None,
         futility: float = FUTILITY, draws: int = DRAWS) -> Race:
    """The race's state from the records: the rounds run, the stops, and the runs the current round lacks.

    ``runs``: trial -> {seed: top-1} of the COMPLETE runs; ``diverged``: trial -> the seeds
    whose loss diverged (final, no value). A round is complete when every entrant still
    racing has a final run of its seed; the stops after round k look at seeds 1..k only,
    so later records (say, of an earlier fixed-design confirmation) change no decision.
    ``own``: trial -> the search's own full-fidelity run (on the study's seed): it enters
    the noise estimate only (`search.stats.pooled`'s ``noise_only``), which gives round 1 an
    interval; the means, and so every stop's direction, rest on the new seeds alone.
    ``futility``: the chance of changing the fixed design's picks that a round may give up
    (`chances`; 0 turns curtailment off); ``draws``: its simulated completions, from a
    generator seeded by the round, so the same records make the same decisions.
    """
    alive = [e.number for e in entrants]
    baseline = {e.number for e in entrants if e.baseline}
    out = Race(alive=alive)
    for k, seed in enumerate(seeds, start=1):
        missing = [n for n in alive if seed not in runs.get(n, {}) and seed not in diverged.get(n, ())]
        if missing:
            out.todo = [Run(n, seed) for n in missing]
            return out
        now = set(seeds[:k])

        def diverged_now(n: int) -> list[int]:
            return sorted(now & set(diverged.get(n, ())))

        stops = {n: f"diverged on seed {', '.join(map(str, diverged_now(n)))}" for n in alive if diverged_now(n)}
        seen = {e.number: {s: v for s, v in runs.get(e.number, {}).items() if s in now}
                for e in entrants if not diverged_now(e.number)}
        fit = pooled(seen, step, own)
        racing = [n for n in alive if n not in stops]
        behind = dominated(entrants, racing, fit, level, by_cost) if fit else {}
        settled = None
        if fit and futility > 0 and k < len(seeds):  # after the last seed no run is left to save
            stable = [e for e in entrants if e.number in fit.index]
            picked, settled = chances(stable, seeds, seen, fit, step, draws, np.random.default_rng(k))
            behind |= {n: (f"with every seed run, the fixed design would pick it in {picked[n]:.1%} of {draws} "
                           f"simulated completions (with this round's less likely stops: {total:.1%}, "
                           f"under {futility:.0%})")
                       for n, total in futile(picked, [n for n in racing if n not in behind], futility).items()}
        others_on = [n for n in racing if n not in baseline and n not in behind]
        # the baseline, the reference of the paired differences, stays while another candidate races on
        stops |= {n: why for n, why in behind.items() if n not in baseline or not others_on}
        ran = tuple(alive)
        alive = [n for n in alive if n not in stops]
        out.alive = alive
        out.rounds.append(Round(seed, ran, tuple(Stop(n, k, stops[n]) for n in ran if n in stops)))
        out.stops |= {n: Stop(n, k, stops[n]) for n in ran if n in stops}
        out.settled = settled
        undecided = [n for n in alive if n not in behind]
        # the finalists keep 2 new seeds: the report's intervals need them
        if k >= 2 and (len(undecided) <= 1 or (settled is not None and settled >= 1.0 - futility)):
            return out
    return out


def fixed(numbers: Sequence[int], seeds: Sequence[int], runs: Mapping[int, Mapping[int, float]],
          diverged: Mapping[int, Collection[int]]) -> Race:
    """The fixed design as a race of no rounds: every seed for every candidate, the missing ones in one go."""
    todo = [Run(n, s) for n in numbers for s in seeds if s not in runs.get(n, {}) and s not in diverged.get(n, ())]
    return Race(todo=todo, alive=list(numbers))


def trained(numbers: Sequence[int], seeds: Sequence[int], runs: Mapping[int, Mapping[int, float]],
            diverged: Mapping[int, Collection[int]]) -> int:
    """The final runs (COMPLETE or diverged) of these candidates and seeds: what the design has trained."""
    return sum(1 for n in numbers for s in seeds if s in runs.get(n, {}) or s in diverged.get(n, ()))
