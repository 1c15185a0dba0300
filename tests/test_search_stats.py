"""search.stats on hand-made numbers: every expected value is worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fgmodel.stats import t_quantile
from search import stats
from search.stats import Estimate


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


def test_t_quantiles_and_intervals():
    # Student's t, two-sided 95 %: 12.706 (1 df), 4.303 (2), 2.776 (4); "2 SE" with 3 seeds is ~82 %
    assert [round(t_quantile(0.95, df), 3) for df in (1, 2, 4)] == [12.706, 4.303, 2.776]
    assert math.isnan(t_quantile(0.95, 0))
    assert Estimate(0.5, 0.01, 3).halfwidth() == pytest.approx(0.04302653)
    assert Estimate(0.5, 0.01, 3, df=6).halfwidth() == pytest.approx(0.02446912)  # a pooled standard error
    assert math.isnan(Estimate(0.5, math.nan, 1).halfwidth())
    with pytest.raises(ValueError, match="level must be in"):
        t_quantile(95, 2)


@pytest.mark.parametrize(("estimate", "apart"), [
    (Estimate(0.05, 0.01, 3), True),  # 5 SE > 4.303 SE
    (Estimate(-0.05, 0.01, 3), True),
    (Estimate(0.04, 0.01, 3), False),  # 4 SE: apart at "2 SE", not at 95 % with 2 degrees of freedom
    (Estimate(0.05, math.nan, 1), False),  # one seed: no SE
    (Estimate(0.01, 0.0, 2), False),  # the same difference on every seed: a zero SE tells nothing
])
def test_told_apart(estimate, apart):
    assert stats.told_apart(estimate) is apart


def test_a_zero_standard_error_is_floored_at_one_image():
    # 240 images: top-1 moves in steps of 1/240. Two seeds one image apart on both: SE 0.
    a, b = {1: 120 / 240, 2: 121 / 240}, {1: 119 / 240, 2: 120 / 240}
    d = stats.paired_difference(a, b)
    assert d.mean == pytest.approx(1 / 240) and d.se == pytest.approx(0.0, abs=1e-15)
    # floor: step * sqrt(2 / 12) / sqrt(2) = 0.0012028; 12.706 of those = 0.0153 > one image (0.0042)
    floored = stats.floor_se(d, 1 / 240)
    assert floored.se == pytest.approx(0.0012028131) and floored.mean == d.mean
    assert not stats.told_apart(d, step=1 / 240) and not stats.told_apart(d)
    assert stats.p_value(d) == 1.0 and stats.p_value(d, 1 / 240) > 0.05
    # ten images on each of 3 seeds: floor 0.000982, 4.303 of those = 0.0042 < 0.0417: apart
    ten = stats.paired_difference({1: 0.5, 2: 0.5, 3: 0.5}, {1: 110 / 240, 2: 110 / 240, 3: 110 / 240})
    assert stats.told_apart(ten, step=1 / 240)
    assert stats.floor_se(Estimate(0.01, 0.02, 3), 1 / 240).se == 0.02  # a real spread is kept


def test_p_value_and_holm():
    # t = 3 on 2 df: P(T > 3) = 1/2 - 3 / (2 sqrt(11)) = 0.0477 (t's closed form for 2 df)
    assert stats.p_value(Estimate(0.03, 0.01, 3)) == pytest.approx(2 * (0.5 - 3 / (2 * math.sqrt(11))))
    # Holm at 0.05: 0.01 <= 0.05 / 3 rejected; 0.03 > 0.05 / 2 stops, so 0.04 is not rejected either
    assert stats.holm({1: 0.01, 2: 0.04, 3: 0.03}) == {1}
    assert stats.holm({1: 0.01, 2: 0.02}) == {1, 2}  # 0.01 <= 0.025, then 0.02 <= 0.05
    assert stats.holm({1: 0.2}) == set() and stats.holm({}) == set()


def test_pooled_block_design():
    # 2 configs x 2 seeds: residuals +-(A1 - A2 - B1 + B2) / 4 = +-0.005, RSS 4 * 0.005^2 on 1 df: sd 0.01;
    # the difference of means (0.09) has variance 2 sd^2 / 2: se 0.01, the paired t's own
    fit = stats.pooled({1: {1: 0.50, 2: 0.52}, 2: {1: 0.40, 2: 0.44}})
    d = fit.difference(1, 2)
    assert (fit.df, d.n, d.df) == (1, 2, 1)
    assert fit.sd == pytest.approx(0.01) and d.mean == pytest.approx(0.09) and d.se == pytest.approx(0.01)
    assert stats.pooled({1: {1: 0.5}, 2: {1: 0.4}}) is None  # one seed: no degree of freedom left
    assert stats.pooled({1: {1: 0.5, 2: 0.5}, 2: {1: 0.4, 2: 0.4}}) is None  # no spread and no step
    floored = stats.pooled({1: {1: 0.5, 2: 0.5}, 2: {1: 0.4, 2: 0.4}}, step=1 / 240)
    assert floored.sd == pytest.approx(1 / 240 / math.sqrt(12))


# trial -> seed -> top-1, a block design of 4 configs x 3 seeds: 6 residual degrees of freedom.
# Residuals (x - config mean - seed mean + 0.4875): RSS 6.5e-4, var 1.083e-4 (sd 0.0104); a
# difference of two means has se sqrt(2 var / 3) = 0.0085 and t(6) = 2.447: half-width 2.08 pp.
#   7 - 4: +1.00 pp, 7 - 9: +10 pp, 7 - 0: +2.00 pp (-0.08 to +4.08), 4 - 0: +1.00 pp
RUNS = {
    0: {1: 0.49, 2: 0.50, 3: 0.51},
    4: {1: 0.49, 2: 0.53, 3: 0.51},
    7: {1: 0.50, 2: 0.52, 3: 0.54},
    9: {1: 0.40, 2: 0.42, 3: 0.44},
}
POOLED = "95% t-intervals, seed noise pooled over the configs"


def test_verdict_ties_and_baseline():
    assert stats.verdict(RUNS, baseline=0) == (
        f"The top candidates, trials 7 and 4, cannot be told apart: their differences to trial 7 (best mean, "
        f"52.00%) are within the noise ({POOLED}, Holm-corrected over 2 comparisons); none of them can be told "
        f"apart from the baseline (trial 7 minus the baseline (trial 0) is +2.00 pp (95% t-interval -0.08 to "
        f"+4.08) over 3 seeds; {POOLED}, Holm-corrected over 2 comparisons): the difference is within the noise.")


def test_verdict_clear_winner_and_noise():
    # 0, 7, 9: RSS 1.333e-4 on 4 df, se sqrt(2 * 3.33e-5 / 3) = 0.0047, t(4) = 2.776: +2.00 +- 1.31 pp
    runs = {0: RUNS[0], 7: RUNS[7], 9: RUNS[9]}
    assert stats.verdict(runs, baseline=0) == (
        f"Trial 7 (best mean, 52.00%) is ahead of trial 9 ({POOLED}); it is above the baseline (trial 7 minus "
        f"the baseline (trial 0) is +2.00 pp (95% t-interval +0.69 to +3.31) over 3 seeds; {POOLED}).")
    runs = {0: RUNS[0], 4: RUNS[4]}  # two configs: the paired t, se 0.01 on 2 df
    assert stats.verdict(runs, baseline=0) == (
        f"Trial 4 is the only confirmed candidate (mean 51.00%); it cannot be told apart from the baseline "
        f"(trial 4 minus the baseline (trial 0) is +1.00 pp (95% t-interval -3.30 to +5.30) over 3 seeds; "
        f"{POOLED}): the difference is within the noise.")


def test_verdict_without_baseline_or_seeds():
    assert stats.verdict({4: RUNS[4], 7: RUNS[7]}).endswith("; no baseline was confirmed to compare with.")
    assert stats.verdict({}) == "No candidate is confirmed yet: every figure is a single run."
    assert stats.verdict({0: {1: 0.5}, 7: {1: 0.6}}, baseline=0).startswith("Each config ran with one seed only")


def test_verdict_when_the_baseline_leads():
    runs = {0: {1: 0.47, 2: 0.43}, 4: {1: 0.35, 2: 0.29}}  # 4 - 0: -.12 -.14 -> mean -.13, se .01, t(1) = 12.706
    assert stats.verdict(runs, baseline=0) == (
        f"The baseline (trial 0) has the best mean, 45.00%; trial 4 is the only confirmed candidate (mean 32.00%); "
        f"it is below the baseline (trial 4 minus the baseline (trial 0) is -13.00 pp (95% t-interval -25.71 to "
        f"-0.29) over 2 seeds; {POOLED}).")


def test_pooled_noise_only_block_enters_the_variance_not_the_means():
    # one seed each has no degree of freedom; a second block of the same configs (the search's own runs) gives
    # the 2 x 3 block design's: d = own - seed 1 = (+0.01, +0.02, +0.005), RSS sum (d - mean d)^2 / 2 on 2 df
    seed_1 = {1: {1: 0.60}, 2: {1: 0.50}, 0: {1: 0.55}}
    own = {1: 0.61, 2: 0.52, 0: 0.555, 7: 0.99}  # 7 ran no new seed: left out
    assert stats.pooled(seed_1) is None
    fit = stats.pooled(seed_1, noise_only=own)
    d = [0.01, 0.02, 0.005]
    mean_d = sum(d) / 3
    assert fit.df == 2 and fit.sd == pytest.approx(math.sqrt(sum((x - mean_d) ** 2 for x in d) / 2 / 2))
    diff = fit.difference(1, 2)
    assert diff.mean == pytest.approx(0.10) and diff.se == pytest.approx(fit.sd * math.sqrt(2)) and diff.n == 1
    assert sorted(fit.index) == [0, 1, 2]


def test_image_seed_bootstrap_resamples_the_images_and_the_seeds():
    same = {1: np.arange(100) % 2 == 0, 2: np.arange(100) % 3 == 0}
    assert stats.image_seed_bootstrap(same, same) == (0.0, 0.0, 0.0)
    # a is right where b is wrong on 10 of 100 images, on both seeds: the images alone move the difference, a
    # binomial count of those 10 in 100 resampled images: 0.10 +- 1.96 x 0.03
    b = {s: np.zeros(100, dtype=bool) for s in (1, 2)}
    a = {s: np.arange(100) < 10 for s in (1, 2)}
    mean, low, high = stats.image_seed_bootstrap(a, b)
    assert mean == 0.10 and abs(low - 0.041) < 0.012 and abs(high - 0.159) < 0.012
    # seed 2 reverses it on other images: the seeds' resampling spreads the interval across zero
    a[2], b[2] = np.zeros(100, dtype=bool), (np.arange(100) >= 90)
    mean, low, high = stats.image_seed_bootstrap(a, b)
    assert mean == 0.0 and low < -0.05 and high > 0.05
    assert stats.image_seed_bootstrap(a, {3: b[2]}) is None  # no shared seed
    assert stats.image_seed_bootstrap(a, {1: np.zeros(99, dtype=bool)}) is None  # not the same split
