"""Pareto geometry on (val top-1, GFLOPs) points: top-1 up, GFLOPs down.

One dominance rule for everything that ranks or selects on the two objectives: the
scheduler's rungs (`rank`, `search.moasha`), the front of confirmed means
(`search.stats.front`), the benchmark's hypervolume (`bench/search_quality.py`) and the
study's feasible front (`pareto_front`, Optuna's own selection by the same rule). No Ray,
so the report and export commands import it cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial


def _dominates(points: np.ndarray) -> np.ndarray:
    """``d[i, j]``: point i dominates point j (column 0 up, column 1 down)."""
    a = points[:, None, :]
    b = points[None, :, :]
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
