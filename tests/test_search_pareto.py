"""search.pareto's front and picks on hand-made points: single runs or means, one at a time or many draws at once."""

from __future__ import annotations

import numpy as np
import pytest

from search import pareto
from search.pareto import Point

# The points of test_search_export's DESIGN: front (0, 1, 2, 4); 1 is the knee, 4 max-acc; 3 dominated; 5 infeasible.
POINTS = [
    Point(0, 0.50, 1.00), Point(1, 0.80, 1.01), Point(2, 0.85, 1.04), Point(3, 0.84, 1.05),
    Point(4, 0.90, 1.10), Point(5, 0.99, 1.20, feasible=False),
]


def test_front_and_picks():
    assert [p.number for p in pareto.front(POINTS)] == [0, 1, 2, 4]
    assert pareto.pick(POINTS, "max-acc").number == 4
    assert pareto.pick(POINTS, "knee").number == 1
    equal = [Point(3, 0.5, 1.0), Point(2, 0.5, 1.0)]
    assert [p.number for p in pareto.front(equal)] == [2, 3] and pareto.pick(equal, "max-acc").number == 2
    with pytest.raises(ValueError, match="no point is within the FLOPs budget"):
        pareto.pick([POINTS[5]], "knee")
    with pytest.raises(ValueError, match="unknown pick"):
        pareto.pick(POINTS, "best")


def test_knee_falls_back_to_max_acc():
    def knee(*points):
        return pareto.pick([Point(n, a, g) for n, (a, g) in enumerate(points)], "knee").number

    assert knee((0.5, 1.0), (0.9, 2.0)) == 1  # two points
    assert knee((0.5, 1.0), (0.7, 1.5), (0.9, 2.0)) == 2  # on the chord
    assert knee((0.5, 1.0), (0.6, 1.8), (0.9, 2.0)) == 2  # below it
    assert knee((0.5, 1.0), (0.6, 1.2), (0.85, 1.5), (0.9, 2.0)) == 2  # above it: the knee
    assert knee((0.5, 1.0), (0.5, 1.0), (0.5, 1.0)) == 0  # equal points, no spread: max-acc, the earliest


def test_picks_of_every_kind_or_none():
    assert pareto.picks(POINTS) == {"max-acc": 4, "knee": 1}
    assert pareto.picks([POINTS[5]]) == {}  # nothing within the budget
    assert pareto.picks([]) == {}


def test_picks_many_is_picks_on_every_draw():
    # rounded to 1/20 and on 3 GFLOPs levels, many draws tie in top-1 or cost: the tie-breaks must agree too
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 8))
        gflops, numbers = rng.choice([0.1, 0.2, 0.25, 0.3], size=n), rng.permutation(20)[:n]
        top1 = np.round(rng.uniform(0.4, 0.6, size=(4, n)) * 20) / 20
        many = pareto.picks_many(top1, gflops, numbers)
        for d in range(4):
            one = pareto.picks([pareto.Point(int(numbers[i]), float(top1[d, i]), float(gflops[i])) for i in range(n)])
            assert {how: int(numbers[column[d]]) for how, column in many.items()} == one
