"""How much of a difference in validation top-1 is noise, and the picks on a front of single runs or means.

Pure functions over plain numbers (accuracies are fractions in [0, 1]), so the report, the
export and the confirmation share one definition of every figure. Two noises differ and
are kept apart: a config trained again with N seeds on the *same* validation split
(`search.confirm`) has the standard error across seeds, the training noise; a single run
has only the binomial standard error of a top-1 on n images (`binomial_se`), the noise of
the split's draw of images, which no number of seeds removes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fgmodel.stats import Estimate, mean_se
from search.pareto import nondominated_fronts

TOLD_APART_SE = 2.0
PICKS = ("max-acc", "knee")

__all__ = ["PICKS", "Estimate", "Point", "binomial_se", "front", "mean_se", "paired_difference", "pick", "picks",
           "told_apart", "verdict"]


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> Estimate:
    """Mean and standard error of ``a[s] - b[s]`` over the seeds ``s`` both have."""
    return mean_se([a[s] - b[s] for s in sorted(set(a) & set(b))])


def binomial_se(p: float, n: int) -> float:
    """Standard error of a top-1 of ``p`` measured on ``n`` images: sqrt(p (1 - p) / n); NaN without images."""
    if n <= 0 or math.isnan(p):
        return math.nan
    return math.sqrt(p * (1.0 - p) / n)


def told_apart(difference: Estimate, k: float = TOLD_APART_SE) -> bool:
    """True when a paired difference is more than ``k`` standard errors from zero (needs n >= 2).

    Pairing (A_s - B_s over the seeds both configs ran) cancels what a seed does to both
    (the same head initialisation, data order and augmentation draws), so it is sharper
    than comparing two means +- 2 SE. A rule of thumb, not a test: with 3 seeds, +- 2 SE is
    about an 82 % interval of Student's t with 2 degrees of freedom, so "told apart" is
    lenient and "cannot be told apart" is a warning worth heeding.
    """
    return difference.n >= 2 and abs(difference.mean) > k * difference.se


# -- the front and the picks, on any (top-1, GFLOPs) points: single runs or means -------------


@dataclass(frozen=True)
class Point:
    number: int  # the trial number: ties go to the earlier trial
    top1: float  # a single run's validation top-1, or the mean over seeds
    gflops: float
    feasible: bool = True  # within the FLOPs budget


def front(points: Sequence[Point]) -> list[Point]:
    """The feasible points no other feasible point dominates (top-1 up, GFLOPs down), cheapest first.

    The first front of `search.pareto.nondominated_fronts`, not Optuna's selection
    (``Study.best_trials``), which works on the trials of a study: a mean over seeds is no
    trial. The rule is the same: dominated means no worse in both objectives and better in
    one. Equal points are all kept.
    """
    feasible = [p for p in points if p.feasible]
    fronts = nondominated_fronts([(p.top1, p.gflops) for p in feasible])
    on_front = [feasible[i] for i in fronts[0]] if fronts else []
    return sorted(on_front, key=lambda p: (p.gflops, -p.top1, p.number))


def _max_acc(points: Sequence[Point]) -> Point:
    """Highest top-1; ties go to fewer GFLOPs, then the earlier trial."""
    return max(points, key=lambda p: (p.top1, -p.gflops, -p.number))


def _knee(points: Sequence[Point]) -> Point:
    """Where extra GFLOPs stop buying accuracy: the point farthest above the chord of the extremes.

    The chord joins the cheapest and the most accurate point, with GFLOPs and top-1 each
    scaled to [0, 1] over ``points`` (a front). With fewer than three points, no spread
    in either objective or no point above the chord, it is the max-acc point.
    """
    points = list(points)
    best = _max_acc(points)
    if len(points) < 3:
        return best
    g = [p.gflops for p in points]
    a = [p.top1 for p in points]
    g_span, a_span = max(g) - min(g), max(a) - min(a)
    if g_span == 0 or a_span == 0:
        return best
    scaled = [((p.gflops - min(g)) / g_span, (p.top1 - min(a)) / a_span) for p in points]
    cheapest = min(range(len(points)), key=lambda i: (g[i], -a[i]))
    (x0, y0), (x1, y1) = scaled[cheapest], scaled[points.index(best)]
    # Cross product: > 0 for points above the line from the cheapest to the best point.
    above = [(x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) for x, y in scaled]
    knee = max(range(len(points)), key=lambda i: (above[i], -points[i].number))
    return points[knee] if above[knee] > 1e-12 else best


def pick(points: Sequence[Point], how: str) -> Point:
    """The ``how`` pick on the front of ``points``; ValueError when no point is feasible.

    ``max-acc``: the front's most accurate point (its most expensive). ``knee``: where
    extra GFLOPs stop buying accuracy (`_knee`).
    """
    if how not in PICKS:
        raise ValueError(f"unknown pick {how!r} (known: {', '.join(PICKS)})")
    on_front = front(points)
    if not on_front:
        raise ValueError("no point is within the FLOPs budget")
    return _max_acc(on_front) if how == "max-acc" else _knee(on_front)


def picks(points: Sequence[Point]) -> dict[str, int]:
    """Every pick in `PICKS` -> its trial number; empty when no point is feasible."""
    return {how: pick(points, how).number for how in PICKS} if any(p.feasible for p in points) else {}


# -- the plain sentence ----------------------------------------------------------------------


def _pp(x: float) -> str:
    return f"{100 * x:.2f}"


def _names(numbers: Sequence[int]) -> str:
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def verdict(runs: Mapping[int, Mapping[int, float]], baseline: int | None = None, k: float = TOLD_APART_SE) -> str:
    """A plain sentence on whether the best confirmed candidates differ from each other and from the baseline.

    ``runs``: trial number -> {seed: validation top-1} of every confirmed config to judge
    (within budget), the baseline's included when it is given. The candidates are the
    others; the leader is the one with the best mean. "The top candidates" are the leader
    and every candidate that `told_apart` cannot separate from it; each of them is then
    compared with the baseline the same way.
    """
    candidates = {n: seeds for n, seeds in runs.items() if n != baseline and seeds}
    if not candidates:
        return "No candidate is confirmed yet: every figure is a single run."
    means = {n: mean_se(list(seeds.values())) for n, seeds in candidates.items()}
    if max(len(s) for s in runs.values()) < 2:
        return ("Each config ran with one seed only, so there is no standard error: "
                "confirm with 2 or more seeds before trusting a difference.")
    leader = max(means, key=lambda n: (means[n].mean, -n))
    ties = [n for n in sorted(candidates, key=lambda n: (-means[n].mean, n))
            if n != leader and not told_apart(paired_difference(candidates[leader], candidates[n]), k)]
    top = [leader, *ties]
    if ties:
        parts = [(f"The top candidates, trials {_names(top)}, cannot be told apart: their paired differences "
                  f"to trial {leader} (best mean, {_pp(means[leader].mean)}%) are within {k:g} standard errors")]
    elif len(candidates) > 1:
        others = sorted(n for n in candidates if n != leader)
        parts = [(f"Trial {leader} (best mean, {_pp(means[leader].mean)}%) is ahead of "
                  f"{'trial' if len(others) == 1 else 'trials'} {_names(others)} by more than {k:g} standard "
                  f"errors of the paired difference")]
    else:
        parts = [f"Trial {leader} is the only confirmed candidate (mean {_pp(means[leader].mean)}%)"]
    if baseline is None or not runs.get(baseline):
        return parts[0] + "; no baseline was confirmed to compare with."
    base_mean = mean_se(list(runs[baseline].values())).mean
    if base_mean > means[leader].mean:
        parts = [f"The baseline (trial {baseline}) has the best mean, {_pp(base_mean)}%",
                 parts[0][0].lower() + parts[0][1:]]
    vs = {n: paired_difference(candidates[n], runs[baseline]) for n in top}
    apart = [n for n in top if told_apart(vs[n], k)]
    d = vs[leader]
    lead = (f"trial {leader} minus the baseline (trial {baseline}) is {d.mean * 100:+.2f} +- {_pp(d.se)} pp "
            f"over {d.n} seeds")
    if not apart:
        who = "none of them can" if len(top) > 1 else "it cannot"
        parts.append(f"{who} be told apart from the baseline ({lead}): the difference is within the noise")
    elif len(apart) < len(top):
        which = f"trial {apart[0]} can" if len(apart) == 1 else f"trials {_names(apart)} can"
        parts.append(f"only {which} be told apart from the baseline ({lead})")
    else:
        signs = {vs[n].mean > 0 for n in top}
        direction = "differs from" if len(signs) > 1 else ("is above" if signs == {True} else "is below")
        who = "each of them" if len(top) > 1 else "it"
        parts.append(f"{who} {direction} the baseline by more than {k:g} standard errors ({lead})")
    return "; ".join(parts) + "."
