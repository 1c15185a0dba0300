"""Racing a confirmation: seeds in rounds, and a candidate that is clearly dominated stops early.

F-Race (Birattari et al. 2002) and Hoeffding races (Maron & Moore 1994), on a front of
two objectives. Round k gives seed k to every candidate still in the race; after it, a
candidate stops when another one in the race, no costlier in GFLOPs, is clearly more
accurate: the lower end of the Student-t interval of their difference is above zero. Such
a candidate cannot be on the front of the means, so neither pick (max-acc, knee) can be
it. A candidate with a diverged seed stops too (it is kept out of the picks). The
baseline, the reference of every paired difference, stays while any other candidate
races. The race is over when at most one candidate is undecided (from round 2: the
finalists keep two new seeds, what the report's intervals need), or after the last seed.

The seed noise is pooled over the candidates (`search.stats.pooled`: top-1 = config +
seed + error, one error variance for all, as the report's verdict judges them): with 2
seeds a pair alone has 1 degree of freedom (a t quantile of 12.7), a pool of six
candidates has 5 (2.57). One new seed alone has none, so the search's own runs of the
candidates (all on the study's seed) join the noise estimate as one more block: round 1
can stop a candidate too. They never enter a mean: selected for being high, their
residuals only widen the intervals (`bench/racing.py` measures what they save).

Everything is a function of the records (which runs ended, with what top-1), so a resumed
confirmation, the report and the export all recompute the same rounds and stops.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from fgmodel.stats import LEVEL
from search.stats import Estimate, Pooled, pooled


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


def race(entrants: Sequence[Entrant], seeds: Sequence[int], runs: Mapping[int, Mapping[int, float]],
         diverged: Mapping[int, Collection[int]], level: float = LEVEL, step: float | None = None,
         by_cost: bool = True, own: Mapping[int, float] | None = None) -> Race:
    """The race's state from the records: the rounds run, the stops, and the runs the current round lacks.

    ``runs``: trial -> {seed: top-1} of the COMPLETE runs; ``diverged``: trial -> the seeds
    whose loss diverged (final, no value). A round is complete when every entrant still
    racing has a final run of its seed; the stops after round k look at seeds 1..k only,
    so later records (say, of an earlier fixed-design confirmation) change no decision.
    ``own``: trial -> the search's own full-fidelity run (on the study's seed): it enters
    the noise estimate only (`search.stats.pooled`'s ``noise_only``), which gives round 1 an
    interval; the means, and so every stop's direction, rest on the new seeds alone.
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
        fit = pooled({e.number: {s: v for s, v in runs.get(e.number, {}).items() if s in now}
                      for e in entrants if not diverged_now(e.number)}, step, own)
        racing = [n for n in alive if n not in stops]
        behind = dominated(entrants, racing, fit, level, by_cost) if fit else {}
        others_on = [n for n in racing if n not in baseline and n not in behind]
        # the baseline, the reference of the paired differences, stays while another candidate races on
        stops |= {n: why for n, why in behind.items() if n not in baseline or not others_on}
        ran = tuple(alive)
        alive = [n for n in alive if n not in stops]
        out.alive = alive
        out.rounds.append(Round(seed, ran, tuple(Stop(n, k, stops[n]) for n in ran if n in stops)))
        out.stops |= {n: Stop(n, k, stops[n]) for n in ran if n in stops}
        undecided = [n for n in alive if n not in behind]
        if len(undecided) <= 1 and k >= 2:  # the finalists keep 2 new seeds: the report's intervals need them
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
