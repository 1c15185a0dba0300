"""Pareto geometry on (val top-1, GFLOPs) points: top-1 up, GFLOPs down.

One dominance rule for everything that ranks or selects on the two objectives: the
scheduler's rungs (`rank`, `search.moasha`), the front and the picks (max-acc, knee) on
single runs or confirmed means (`front`, `pick`, and `picks_many` on a race's simulated
completions), the benchmark's hypervolume (`bench/search_quality.py`) and the study's
feasible front (`pareto_front`, Optuna's own selection by the same rule). No Ray, so the
report and export commands import it cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial


def _dominates(points: np.ndarray) -> np.ndarray:
    """``d[..., i, j]``: point i dominates point j (column 0 up, column 1 down); leading axes: sets of points."""
    a = points[..., :, None, :]
    b = points[..., None, :, :]
    no_worse = (a[..., 0] >= b[..., 0]) & (a[..., 1] <= b[..., 1])
    better = (a[..., 0] > b[..., 0]) | (a[..., 1] < b[..., 1])
    return no_worse & better


def nondominated_fronts(points: Sequence[tuple[float, float]]) -> list[list[int]]:
    """Indices of ``(top1, gflops)`` points by Pareto front, best front first (top1 up, gflops down)."""
    if not points:
        return []
    arr = np.asarray(points, dtype=float).reshape(-1, 2)
    dom = _dominates(arr)
    left = np.ones(len(arr), dtype=bool)
    fronts = []
    while left.any():
        dominated = (dom[left][:, left]).any(axis=0)
        front = np.flatnonzero(left)[~dominated]
        fronts.append(front.tolist())
        left[front] = False
    return fronts


def crowding_distance(points: Sequence[tuple[float, float]]) -> list[float]:
    """NSGA-II crowding distance of each point within its set (the two ends of each axis: inf).

    Each objective's gap is divided by that objective's range in the set; an objective
    with no range adds nothing.
    """
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    arr = np.asarray(points, dtype=float)
    dist = np.zeros(n)
    for col in range(arr.shape[1]):
        order = np.argsort(arr[:, col], kind="stable")
        span = arr[order[-1], col] - arr[order[0], col]
        dist[order[0]] = dist[order[-1]] = math.inf
        if span > 0:
            gaps = (arr[order[2:], col] - arr[order[:-2], col]) / span
            dist[order[1:-1]] += gaps
    return dist.tolist()


def rank(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices best first: by front, then crowding distance (larger first), then top1 up, gflops down."""
    order: list[int] = []
    for front in nondominated_fronts(points):
        crowd = crowding_distance([points[i] for i in front])
        key = {i: (-c, -points[i][0], points[i][1]) for i, c in zip(front, crowd, strict=True)}
        order.extend(sorted(front, key=lambda i: key[i]))
    return order


def hypervolume(points: Iterable[tuple[float, float]], ref_gflops: float, ref_top1: float = 0.0) -> float:
    """The area that ``(top1, gflops)`` points dominate (top1 up, gflops down) inside the reference box.

    The box is top1 >= ``ref_top1``, gflops <= ``ref_gflops``; points outside it add
    nothing. Hand-written because Optuna's hypervolume is private (``optuna._hypervolume``)
    and two objectives need only a sweep: sort by GFLOPs, and each step to the next
    point's GFLOPs adds its width times the best top-1 reached so far.
    """
    inside = sorted((g, t) for t, g in points if t > ref_top1 and g < ref_gflops)
    edges = [g for g, _ in inside[1:]] + [ref_gflops]
    area, best = 0.0, ref_top1
    for (g, t), g_next in zip(inside, edges[: len(inside)], strict=True):
        best = max(best, t)
        area += (g_next - g) * (best - ref_top1)
    return area


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The COMPLETE, within-budget, non-dominated trials, cheapest first.

    Optuna's ``best_trials``: it leaves out the trials whose FLOPs constraint is violated.
    """
    return sorted(study.best_trials, key=lambda t: (t.values[1], -t.values[0], t.number))


# -- the front and the picks, on any (top-1, GFLOPs) points: single runs or means -------------------

PICKS = ("max-acc", "knee")


@dataclass(frozen=True)
class Point:
    number: int  # the trial number: ties go to the earlier trial
    top1: float  # a single run's validation top-1, or the mean over seeds
    gflops: float
    feasible: bool = True  # within the FLOPs budget


def front(points: Sequence[Point]) -> list[Point]:
    """The feasible points no other feasible point dominates (top-1 up, GFLOPs down), cheapest first.

    The first front of `nondominated_fronts`, not Optuna's selection
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


def picks_many(top1: np.ndarray, gflops: Sequence[float], numbers: Sequence[int]) -> dict[str, np.ndarray]:
    """`picks` on many draws at once: ``top1`` (draws x points, every point feasible) -> pick -> column per draw.

    The same rules and tie-breaks as `pick` (a race predicts the fixed design's picks over
    thousands of simulated completions, `search.racing`); tests hold the two equal.
    """
    a = np.asarray(top1, dtype=float)
    g = np.broadcast_to(np.asarray(gflops, dtype=float), a.shape)
    rank = np.argsort(np.argsort(np.asarray(numbers)))  # ties go to the earlier trial: its rank is lower

    def first(mask: np.ndarray) -> np.ndarray:
        """Per draw, the masked column of the earliest trial."""
        return np.argmin(np.where(mask, rank, len(rank)), axis=1)

    def masked(values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
        return getattr(np.where(mask, values, -np.inf if how == "max" else np.inf), how)(axis=1, keepdims=True)

    on_front = ~_dominates(np.stack([a, g], axis=-1)).any(axis=1)
    top = a == a.max(axis=1, keepdims=True)
    best = first(top & (g == masked(g, top, "min")))
    cheap = on_front & (g == masked(g, on_front, "min"))
    cheapest = first(cheap & (a == masked(a, cheap, "max")))
    g_low, g_span = masked(g, on_front, "min"), masked(g, on_front, "max") - masked(g, on_front, "min")
    a_low, a_span = masked(a, on_front, "min"), masked(a, on_front, "max") - masked(a, on_front, "min")
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = (g - g_low) / g_span, (a - a_low) / a_span
    rows = np.arange(len(a))
    x0, y0 = x[rows, cheapest][:, None], y[rows, cheapest][:, None]
    x1, y1 = x[rows, best][:, None], y[rows, best][:, None]
    above = np.where(on_front, (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0), -np.inf)
    top_above = above.max(axis=1)
    knee = first(above == top_above[:, None])
    flat = (on_front.sum(axis=1) < 3) | (g_span[:, 0] == 0) | (a_span[:, 0] == 0) | ~(top_above > 1e-12)
    return {"max-acc": best, "knee": np.where(flat, best, knee)}
