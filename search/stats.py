"""How much of a difference in validation top-1 is noise: intervals, the pooled block design, the verdict.

Pure functions over plain numbers (accuracies are fractions in [0, 1]), so the report, the
export and the confirmation share one definition of every figure. Two noises differ and
are kept apart: a config trained again with N seeds on the *same* validation split
(`search.confirm`) has the standard error across seeds, the training noise; a single run
has only the binomial standard error of a top-1 on n images (`binomial_se`), the noise of
the split's draw of images, which no number of seeds removes.

Comparisons are paired over seeds (the same seed for both configs) and judged by
Student-t intervals at `LEVEL` for the degrees of freedom of their noise: a pair's own
(`told_apart`), or the seed noise pooled over every confirmed config (`pooled`, what the
verdict and the race use); a family of comparisons (every candidate against the
baseline, or against the leader) is corrected by Holm's step-down (`holm`). A top-1
moves in steps of one image, so a standard error is never taken below what that rounding
alone gives (`floor_se`): two seeds one image apart have no zero standard error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fgmodel.stats import LEVEL, Estimate, mean_se

__all__ = ["LEVEL", "Estimate", "Pooled", "binomial_se", "floor_se", "holm", "image_seed_bootstrap", "mean_se",
           "p_value", "paired_difference", "pooled", "told_apart", "verdict"]


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> Estimate:
    """Mean and standard error of ``a[s] - b[s]`` over the seeds ``s`` both have."""
    return mean_se([a[s] - b[s] for s in sorted(set(a) & set(b))])


def binomial_se(p: float, n: int) -> float:
    """Standard error of a top-1 of ``p`` measured on ``n`` images: sqrt(p (1 - p) / n); NaN without images."""
    if n <= 0 or math.isnan(p):
        return math.nan
    return math.sqrt(p * (1.0 - p) / n)


def floor_se(e: Estimate, step: float | None, terms: int = 2) -> Estimate:
    """``e`` with its standard error raised to at least what rounding to one image gives.

    A top-1 on n images is a count / n, known only to +- ``step`` / 2 (step = 1 / n): a
    rounding error of standard deviation step / sqrt(12) per value, ``terms`` values per
    seed (2 for a paired difference). So a zero spread over a few seeds is no zero noise.
    Without a step (the split's size unknown) ``e`` is returned as it is.
    """
    if not step or e.n < 2 or math.isnan(e.se):
        return e
    return replace(e, se=max(e.se, step * math.sqrt(terms / 12.0) / math.sqrt(e.n)))


def image_seed_bootstrap(a: Mapping[int, np.ndarray], b: Mapping[int, np.ndarray], level: float = LEVEL,
                         draws: int = 2000, seed: int = 0) -> tuple[float, float, float] | None:
    """Mean of top-1(a) - top-1(b) over their shared seeds, and its paired bootstrap interval at ``level``.

    ``a``, ``b``: seed -> per-image top-1 hits on one validation split (the same images in
    the same order). Each draw resamples the images (the same ones for every seed and both
    configs: which images the split holds) and the seeds (paired: what a seed does), so
    both noises enter, where the t-interval over seeds sees only the second. With two or
    three seeds the seed part is coarse (a bootstrap of three values); the verdict keeps
    the t-interval. None without a shared seed, or when the splits differ in size.
    """
    shared = sorted(set(a) & set(b))
    if not shared or len({len(a[s]) for s in shared} | {len(b[s]) for s in shared}) != 1:
        return None
    diff = np.stack([a[s].astype(np.int8) - b[s].astype(np.int8) for s in shared])  # seeds x images
    rng = np.random.default_rng(seed)
    stat = np.empty(draws)
    for start in range(0, draws, 250):  # chunks: seeds x chunk x images stays small on a large split
        n = min(250, draws - start)
        images = rng.integers(0, diff.shape[1], size=(n, diff.shape[1]))
        seeds = rng.integers(0, len(shared), size=(n, len(shared)))
        per_seed = diff[:, images].mean(axis=2)  # seeds x chunk: each seed's mean over the resampled images
        stat[start:start + n] = np.take_along_axis(per_seed.T, seeds, axis=1).mean(axis=1)
    low, high = np.quantile(stat, [(1 - level) / 2, (1 + level) / 2])
    return float(diff.mean()), float(low), float(high)


def told_apart(difference: Estimate, level: float = LEVEL, step: float | None = None) -> bool:
    """True when the two-sided Student-t interval at ``level`` of a paired difference excludes zero.

    Pairing (A_s - B_s over the seeds both configs ran) cancels what a seed does to both
    (the same head initialisation, data order and augmentation draws). The standard error
    is floored first (`floor_se`); one still at zero (no ``step`` known) tells nothing.
    """
    d = floor_se(difference, step)
    return d.n >= 2 and d.se > 0 and abs(d.mean) > d.halfwidth(level)


def p_value(difference: Estimate, step: float | None = None) -> float:
    """The two-sided paired t-test's p-value of ``difference`` (1.0 when it cannot be judged)."""
    d = floor_se(difference, step)
    if d.n < 2 or not d.se > 0:
        return 1.0
    from scipy.stats import t

    return float(2.0 * t.sf(abs(d.mean) / d.se, d.dof))


def holm(p_values: Mapping[int, float], alpha: float = 1.0 - LEVEL) -> set[int]:
    """The keys whose hypothesis Holm's step-down rejects at family-wise error ``alpha``.

    Sorted by p-value, the i-th smallest (from 0) is rejected while p <= alpha / (m - i);
    the first that is not stops the rejections.
    """
    rejected: set[int] = set()
    ordered = sorted(p_values.items(), key=lambda kv: (kv[1], kv[0]))
    for i, (key, p) in enumerate(ordered):
        if p > alpha / (len(ordered) - i):
            break
        rejected.add(key)
    return rejected


# -- the block design: configs x seeds, one error variance ------------------------------------


@dataclass(frozen=True)
class Pooled:
    """Least squares of top-1[config, seed] = mu[config] + b[seed] + error, one error variance for all."""

    index: dict[int, int]  # search trial -> column
    seeds: dict[int, frozenset[int]]  # search trial -> the seeds it ran
    seed_index: dict[int, int]  # seed -> the column of its effect (the first seed's is the zero: none)
    beta: np.ndarray
    cov: np.ndarray
    df: int
    sd: float  # the pooled seed noise of one run

    def difference(self, a: int, b: int) -> Estimate:
        """mu[a] - mu[b] with its standard error, the pool's degrees of freedom and the seeds both ran (n)."""
        i, j = self.index[a], self.index[b]
        var = self.cov[i, i] + self.cov[j, j] - 2.0 * self.cov[i, j]
        n = len(self.seeds[a] & self.seeds[b])
        return Estimate(float(self.beta[i] - self.beta[j]), math.sqrt(max(var, 0.0)), n, df=self.df)


_NOISE_ONLY_SEED = -1  # the block of `pooled`'s noise-only runs (confirmation seeds are >= 1)


def _block_design(runs: Mapping[int, Mapping[int, float]]) -> tuple[list[int], dict[int, int], np.ndarray, np.ndarray]:
    """The configs, the seed columns, and the least-squares design (config columns, then a column per seed after
    the first) with its top-1s."""
    numbers = sorted(n for n in runs if runs[n])
    seeds = sorted({s for n in numbers for s in runs[n]})
    cells = [(n, s) for n in numbers for s in sorted(runs[n])]
    index = {n: i for i, n in enumerate(numbers)}
    seed_col = {s: len(numbers) + i - 1 for i, s in enumerate(seeds) if i > 0}
    x = np.zeros((len(cells), len(numbers) + len(seeds) - 1))
    y = np.array([runs[n][s] for n, s in cells], dtype=float)
    for row, (n, s) in enumerate(cells):
        x[row, index[n]] = 1.0
        if s != seeds[0]:
            x[row, seed_col[s]] = 1.0
    return numbers, seed_col, x, y


def _residual(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, int]:
    """(coefficients, residual sum of squares, residual degrees of freedom) of the least-squares fit."""
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    return beta, float(resid @ resid), len(y) - int(rank)


def pooled(runs: Mapping[int, Mapping[int, float]], step: float | None = None,
           noise_only: Mapping[int, float] | None = None) -> Pooled | None:
    """The pooled fit of ``runs`` (trial -> seed -> top-1); None without a residual degree of freedom.

    A randomised block design: the configs are the treatments, the seeds the blocks (a
    seed draws the same head initialisation, data order and augmentation for every
    config, so what it does to all of them cancels, as in a paired difference). The
    error variance is pooled over every config, (N - configs - seeds + 1) degrees of
    freedom for N runs: with 2 seeds a pair alone has 1 (a t quantile of 12.7), six
    configs have 5 (2.57); it assumes one seed noise for the configs of one backbone on
    one split. With every config on every seed a difference of means is the mean paired
    difference. ``step``: one image of the validation split; the error's standard
    deviation is never taken below the rounding to it (step / sqrt(12)).

    ``noise_only``: trial -> one more run of it, all on one seed of their own (the
    search's runs, `search.racing`): a block that enters the error variance and its
    degrees of freedom, never a mean. Runs selected for being high carry a bias that
    this block's residuals absorb as extra spread, so the variance errs large (fewer
    things told apart), never a mean lifted.
    """
    numbers, seed_col, x, y = _block_design(runs)
    if not numbers:
        return None
    beta, rss, df = _residual(x, y)
    with_noise_only = {n: {**runs[n], _NOISE_ONLY_SEED: noise_only[n]} for n in numbers if n in (noise_only or {})}
    if with_noise_only:
        _, rss, df = _residual(*_block_design({**runs, **with_noise_only})[2:])
    if df < 1:
        return None
    var = max(rss / df, (step or 0.0) ** 2 / 12.0)
    if var <= 1e-20:
        return None  # no spread (to rounding) and no step known: nothing to judge by
    seeds_of = {n: frozenset(runs[n]) for n in numbers}
    return Pooled({n: i for i, n in enumerate(numbers)}, seeds_of, seed_col, beta, var * np.linalg.pinv(x.T @ x), df,
                  math.sqrt(var))


# -- the plain sentence ----------------------------------------------------------------------


def _pp(x: float) -> str:
    return f"{100 * x:.2f}"


def _names(numbers: Sequence[int]) -> str:
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _how(level: float, m: int) -> str:
    """How a family of ``m`` comparisons was judged, for the sentence."""
    return (f"{level:.0%} t-intervals, seed noise pooled over the configs"
            + (f", Holm-corrected over {m} comparisons" if m > 1 else ""))


def _difference(d: Estimate, level: float) -> str:
    """``+2.00 pp (95% t-interval +0.56 to +3.44) over 3 seeds``."""
    h = d.halfwidth(level)
    low, high = 100 * (d.mean - h), 100 * (d.mean + h)
    interval = "" if math.isnan(h) else f" ({level:.0%} t-interval {low:+.2f} to {high:+.2f})"
    return f"{100 * d.mean:+.2f} pp{interval} over {d.n} seed{'s' if d.n != 1 else ''}"


def verdict(runs: Mapping[int, Mapping[int, float]], baseline: int | None = None, level: float = LEVEL,
            step: float | None = None) -> str:
    """A plain sentence on whether the best confirmed candidates differ from each other and from the baseline.

    ``runs``: trial number -> {seed: validation top-1} of every confirmed config to judge
    (within budget, stable), the baseline's included when it is given; ``step``: one image
    of the validation split. The candidates are the others; the leader has the best mean.
    Differences come from the block design over all of ``runs`` (`pooled`). "The top
    candidates" are the leader and every candidate whose difference to it is not told
    apart (t-intervals at ``level``, Holm over the comparisons with the leader); each of
    them is compared with the baseline the same way (Holm over those comparisons).
    """
    candidates = {n: seeds for n, seeds in runs.items() if n != baseline and seeds}
    if not candidates:
        return "No candidate is confirmed yet: every figure is a single run."
    means = {n: mean_se(list(seeds.values())) for n, seeds in candidates.items()}
    fit = pooled(runs, step) if max(len(s) for s in runs.values()) >= 2 else None
    if fit is None:
        return ("Each config ran with one seed only, so there is no standard error: "
                "confirm with 2 or more seeds before trusting a difference.")
    alpha = 1.0 - level
    leader = max(means, key=lambda n: (means[n].mean, -n))
    others = [n for n in sorted(candidates, key=lambda n: (-means[n].mean, n)) if n != leader]
    ahead = holm({n: p_value(fit.difference(leader, n)) for n in others}, alpha)
    top = [leader, *(n for n in others if n not in ahead)]
    if len(top) > 1:
        parts = [(f"The top candidates, trials {_names(top)}, cannot be told apart: their differences "
                  f"to trial {leader} (best mean, {_pp(means[leader].mean)}%) are within the noise "
                  f"({_how(level, len(others))})")]
    elif others:
        parts = [(f"Trial {leader} (best mean, {_pp(means[leader].mean)}%) is ahead of "
                  f"{'trial' if len(others) == 1 else 'trials'} {_names(sorted(others))} "
                  f"({_how(level, len(others))})")]
    else:
        parts = [f"Trial {leader} is the only confirmed candidate (mean {_pp(means[leader].mean)}%)"]
    if baseline is None or not runs.get(baseline):
        return parts[0] + "; no baseline was confirmed to compare with."
    base_mean = mean_se(list(runs[baseline].values())).mean
    if base_mean > means[leader].mean:
        parts = [f"The baseline (trial {baseline}) has the best mean, {_pp(base_mean)}%",
                 parts[0][0].lower() + parts[0][1:]]
    vs = {n: fit.difference(n, baseline) for n in top}
    apart = [n for n in top if n in holm({n: p_value(vs[n]) for n in top}, alpha)]
    lead = f"trial {leader} minus the baseline (trial {baseline}) is {_difference(vs[leader], level)}"
    how = _how(level, len(top))
    if not apart:
        who = "none of them can" if len(top) > 1 else "it cannot"
        parts.append(f"{who} be told apart from the baseline ({lead}; {how}): the difference is within the noise")
    elif len(apart) < len(top):
        which = f"trial {apart[0]} can" if len(apart) == 1 else f"trials {_names(apart)} can"
        parts.append(f"only {which} be told apart from the baseline ({lead}; {how})")
    else:
        signs = {vs[n].mean > 0 for n in top}
        direction = "differs from" if len(signs) > 1 else ("is above" if signs == {True} else "is below")
        who = "each of them" if len(top) > 1 else "it"
        parts.append(f"{who} {direction} the baseline ({lead}; {how})")
    return "; ".join(parts) + "."
