"""search.stats on hand-made numbers: every expected value is worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

from search import stats
from search.stats import Estimate, Point


def test_mean_se():
    e = stats.mean_se([0.80, 0.82, 0.84])  # sd 0.02 -> se 0.02 / sqrt(3)
    assert e.n == 3 and e.mean == pytest.approx(0.82) and e.se == pytest.approx(0.011547005)
    one = stats.mean_se([0.7])
    assert one.mean == 0.7 and math.isnan(one.se) and one.n == 1
    none = stats.mean_se([])
    assert none.n == 0 and math.isnan(none.mean)


def test_paired_difference_uses_shared_seeds_only():
    a = {1: 0.80, 2: 0.82, 3: 0.84}
    b = {1: 0.78, 2: 0.79, 3: 0.80, 4: 0.10}  # seed 4 has no partner in a
    d = stats.paired_difference(a, b)  # 0.02, 0.03, 0.04 -> sd 0.01
    assert d.n == 3 and d.mean == pytest.approx(0.03) and d.se == pytest.approx(0.01 / math.sqrt(3))
    # the unpaired SEs (0.0115 and 0.0058) would overlap at 2 SE; the pairing separates them
    assert stats.told_apart(d)


def test_binomial_se():
    assert stats.binomial_se(0.9, 600) == pytest.approx(0.0122474487)  # sqrt(0.09 / 600): the 1.2 pp
    assert stats.binomial_se(0.5, 400) == pytest.approx(0.025)
    assert math.isnan(stats.binomial_se(0.5, 0))


@pytest.mark.parametrize(("estimate", "apart"), [
    (Estimate(0.03, 0.01, 3), True),
    (Estimate(-0.03, 0.01, 3), True),
    (Estimate(0.02, 0.01, 3), False),  # exactly 2 SE: not more than 2
    (Estimate(0.05, math.nan, 1), False),  # one seed: no SE
    (Estimate(0.01, 0.0, 2), True),  # the same difference on every seed
])
def test_told_apart(estimate, apart):
    assert stats.told_apart(estimate) is apart


# The points of test_search_export's DESIGN: front (0, 1, 2, 4); 1 is the knee, 4 max-acc; 3 dominated; 5 infeasible.
POINTS = [
    Point(0, 0.50, 1.00), Point(1, 0.80, 1.01), Point(2, 0.85, 1.04), Point(3, 0.84, 1.05),
    Point(4, 0.90, 1.10), Point(5, 0.99, 1.20, feasible=False),
]


def test_front_and_picks():
    assert [p.number for p in stats.front(POINTS)] == [0, 1, 2, 4]
    assert stats.pick(POINTS, "max-acc").number == 4
    assert stats.pick(POINTS, "knee").number == 1
    equal = [Point(3, 0.5, 1.0), Point(2, 0.5, 1.0)]
    assert [p.number for p in stats.front(equal)] == [2, 3] and stats.pick(equal, "max-acc").number == 2
    with pytest.raises(ValueError, match="no point is within the FLOPs budget"):
        stats.pick([POINTS[5]], "knee")
    with pytest.raises(ValueError, match="unknown pick"):
        stats.pick(POINTS, "best")


def test_knee_falls_back_to_max_acc():
    def knee(*points):
        return stats.pick([Point(n, a, g) for n, (a, g) in enumerate(points)], "knee").number

    assert knee((0.5, 1.0), (0.9, 2.0)) == 1  # two points
    assert knee((0.5, 1.0), (0.7, 1.5), (0.9, 2.0)) == 2  # on the chord
    assert knee((0.5, 1.0), (0.6, 1.8), (0.9, 2.0)) == 2  # below it
    assert knee((0.5, 1.0), (0.6, 1.2), (0.85, 1.5), (0.9, 2.0)) == 2  # above it: the knee
    assert knee((0.5, 1.0), (0.5, 1.0), (0.5, 1.0)) == 0  # equal points, no spread: max-acc, the earliest


def test_picks_of_every_kind_or_none():
    assert stats.picks(POINTS) == {"max-acc": 4, "knee": 1}
    assert stats.picks([POINTS[5]]) == {}  # nothing within the budget
    assert stats.picks([]) == {}


# trial -> seed -> top-1. Worked out:
#   7 - 4: +.01 -.01 +.03 -> mean .01, se .0115: within 2 SE, a tie
#   7 - 9: +.10 on every seed -> se 0: apart
#   7 - 0: +.01 +.02 +.03 -> mean .02, se .0058: apart
#   4 - 0:  .00 +.03  .00 -> mean .01, se .0100: within 2 SE
RUNS = {
    0: {1: 0.49, 2: 0.50, 3: 0.51},
    4: {1: 0.49, 2: 0.53, 3: 0.51},
    7: {1: 0.50, 2: 0.52, 3: 0.54},
    9: {1: 0.40, 2: 0.42, 3: 0.44},
}


def test_verdict_ties_and_baseline():
    assert stats.verdict(RUNS, baseline=0) == (
        "The top candidates, trials 7 and 4, cannot be told apart: their paired differences to trial 7 "
        "(best mean, 52.00%) are within 2 standard errors; only trial 7 can be told apart from the baseline "
        "(trial 7 minus the baseline (trial 0) is +2.00 +- 0.58 pp over 3 seeds).")


def test_verdict_clear_winner_and_noise():
    runs = {0: RUNS[0], 7: RUNS[7], 9: RUNS[9]}
    assert stats.verdict(runs, baseline=0) == (
        "Trial 7 (best mean, 52.00%) is ahead of trial 9 by more than 2 standard errors "
        "of the paired difference; it is above the baseline by more than 2 standard errors "
        "(trial 7 minus the baseline (trial 0) is +2.00 +- 0.58 pp over 3 seeds).")
    runs = {0: RUNS[0], 4: RUNS[4]}
    assert stats.verdict(runs, baseline=0) == (
        "Trial 4 is the only confirmed candidate (mean 51.00%); it cannot be told apart from the baseline "
        "(trial 4 minus the baseline (trial 0) is +1.00 +- 1.00 pp over 3 seeds): the difference is within the noise.")
    runs = {0: RUNS[0], 4: RUNS[4], 5: {1: 0.50, 2: 0.53, 3: 0.50}}  # 5 - 4: +.01 0 -.01; 5 - 0: +.01 +.03 -.01
    assert stats.verdict(runs, baseline=0) == (
        "The top candidates, trials 4 and 5, cannot be told apart: their paired differences to trial 4 "
        "(best mean, 51.00%) are within 2 standard errors; none of them can be told apart from the baseline "
        "(trial 4 minus the baseline (trial 0) is +1.00 +- 1.00 pp over 3 seeds): the difference is within the noise.")


def test_verdict_without_baseline_or_seeds():
    assert stats.verdict({4: RUNS[4], 7: RUNS[7]}).endswith("; no baseline was confirmed to compare with.")
    assert stats.verdict({}) == "No candidate is confirmed yet: every figure is a single run."
    assert stats.verdict({0: {1: 0.5}, 7: {1: 0.6}}, baseline=0).startswith("Each config ran with one seed only")


def test_verdict_when_the_baseline_leads():
    runs = {0: {1: 0.47, 2: 0.43}, 4: {1: 0.35, 2: 0.29}}  # 4 - 0: -.12 -.14 -> mean -.13, se .01
    assert stats.verdict(runs, baseline=0) == (
        "The baseline (trial 0) has the best mean, 45.00%; trial 4 is the only confirmed candidate (mean 32.00%); "
        "it is below the baseline by more than 2 standard errors (trial 4 minus the baseline (trial 0) is "
        "-13.00 +- 1.00 pp over 2 seeds).")
