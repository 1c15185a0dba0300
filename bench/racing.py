"""Racing against the fixed design: a simulation whose noise comes from a real confirmation's records.

    python bench/racing.py                            # the demo confirmation recorded below, 2,000 draws each
    python bench/racing.py --study studies/demo       # the noise of another confirmation's records
    python bench/racing.py --draws 500 --seeds 3 --scales 1

What it is. A replay of `search.racing.race` and the picks of `search.confirmed` on
simulated confirmations. A noise model is fitted to a real confirm study's records (the
block design of `search.stats.pooled`: top-1 = config + seed + error): the candidates,
their GFLOPs and which is the baseline; their means; the pooled seed noise (the error's
sd) and the spread of the seed effects. Each draw is one confirmation: true means drawn
around the fitted ones (their standard errors), the gaps below the best scaled by
``--scales`` (1 = the recorded gaps; 0.5 = candidates twice as close), then the fixed
design's runs for every candidate and seed (mean + seed effect + error, rounded to one
image). The fixed design picks (max-acc, knee) on the means of all of them; the race
consumes a prefix of the same runs (each candidate's seeds in order, as long as it
races) and picks on the means of what it consumed. Per setting it prints how often both
pick the same config (a Wilson 95 % interval) and the race's runs over the fixed
design's (mean, t 95 % interval over the draws). Both rules are replayed: ``dominated``
(the default: a candidate stops when one no costlier is clearly ahead) and ``leader``
(single-objective F-Race: anything clearly below the leader stops, the cheap end too).

What it is not. No training runs here: every number after the noise model's fit comes
from the model, not from a search. It assumes normal noise, one seed noise for every
config, no divergence, and that the recorded confirmation's shape (how many candidates,
how close, at which GFLOPs) is typical; a real search draws different candidates each
time, which the scaled gaps only stand in for. "Same pick" compares racing with the fixed
design on the same draws, not either with the truth.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import confirmed, racing, stats  # noqa: E402
from search.racing import Entrant  # noqa: E402

# The recorded demo confirmation: `python -m search.run --task demo --name noise --trials 12
# --epochs 2 --no-confirm`, then `python -m search.confirm --study studies/noise --top 4 --seeds 4`
# (fixed design, 240 validation images). Trial -> (GFLOPs, baseline, {seed: validation top-1}).
RECORDED = {
    12: (0.026818, False, {1: 49 / 240, 2: 52 / 240, 3: 72 / 240, 4: 64 / 240}),
    10: (0.026026, False, {1: 21 / 240, 2: 15 / 240, 3: 28 / 240, 4: 21 / 240}),
    0: (0.026818, True, {1: 59 / 240, 2: 51 / 240, 3: 62 / 240, 4: 53 / 240}),
    2: (0.026818, False, {1: 24 / 240, 2: 30 / 240, 3: 37 / 240, 4: 34 / 240}),
}
RECORDED_IMAGES = 240


@dataclass(frozen=True)
class Model:
    entrants: list[Entrant]
    means: np.ndarray  # per entrant, in order
    se: np.ndarray  # of each mean
    sd: float  # the pooled seed noise of one run
    seed_sd: float  # the spread of the seed effects (what a seed does to every config)
    step: float  # one image
    source: str
    runs: list[dict[int, float]]  # the records, per entrant


def fit(recorded: dict[int, tuple[float, bool, dict[int, float]]], images: int, source: str) -> Model:
    runs = {n: r for n, (_, _, r) in recorded.items()}
    pool = stats.pooled(runs, 1 / images)
    if pool is None:
        raise SystemExit(f"{source}: too few runs for a noise model (every config needs 2 seeds or more)")
    numbers = sorted(runs)
    means = np.array([statistics.fmean(runs[n].values()) for n in numbers])
    se = np.array([pool.sd / math.sqrt(len(runs[n])) for n in numbers])
    seeds = sorted({s for r in runs.values() for s in r})
    effects = [statistics.fmean(runs[n][s] - statistics.fmean(runs[n].values()) for n in numbers if s in runs[n])
               for s in seeds]
    seed_var = statistics.pvariance(effects) - pool.sd ** 2 / len(numbers) if len(seeds) > 1 else 0.0
    entrants = [Entrant(n, recorded[n][0], recorded[n][1]) for n in numbers]
    return Model(entrants, means, se, pool.sd, math.sqrt(max(seed_var, 0.0)), 1 / images, source,
                 [runs[n] for n in numbers])


def from_study(study_dir: str) -> Model:
    from search import attrs
    from search.studydir import load_confirm_study, load_study

    study = load_study(study_dir)
    confirm = load_confirm_study(study, study_dir)
    if confirm is None:
        raise SystemExit(f"{study_dir}: no confirm study")
    got = confirmed.summarize(study, confirm)
    if got is None:
        raise SystemExit(f"{study_dir}: no confirmation run has ended")
    recorded = {n: (p.gflops, n == got.baseline, p.runs) for n, p in got.points.items() if p.stable and p.runs}
    return fit(recorded, int(study.user_attrs[attrs.VAL_IMAGES]), f"{study_dir}:confirm")


def draw(model: Model, rng: np.random.Generator, seeds: int, scale: float) -> dict[int, dict[int, float]]:
    """One confirmation's fixed-design runs: trial -> {seed 1..seeds: top-1}."""
    mu = model.means + rng.normal(0.0, model.se)
    mu = mu.max() + scale * (mu - mu.max())
    effects = rng.normal(0.0, model.seed_sd, size=seeds)
    runs = {}
    for i, e in enumerate(model.entrants):
        values = mu[i] + effects + rng.normal(0.0, model.sd, size=seeds)
        runs[e.number] = {s + 1: float(np.clip(np.round(v / model.step) * model.step, 0.0, 1.0))
                          for s, v in enumerate(values)}
    return runs


def picks(model: Model, runs: dict[int, dict[int, float]]) -> dict[str, int]:
    gflops = {e.number: e.gflops for e in model.entrants}
    return stats.picks([stats.Point(n, statistics.fmean(r.values()), gflops[n]) for n, r in runs.items() if r])


def replay(model: Model, runs: dict[int, dict[int, float]], seeds: int, by_cost: bool) -> tuple[dict, dict, int]:
    """(fixed picks, race picks, runs the race consumed) on one confirmation's runs."""
    state = racing.race(model.entrants, list(range(1, seeds + 1)), runs, {}, step=model.step, by_cost=by_cost)
    consumed: dict[int, dict[int, float]] = {e.number: {} for e in model.entrants}
    for r in state.rounds:
        for n in r.ran:
            consumed[n][r.seed] = runs[n][r.seed]
    return picks(model, runs), picks(model, consumed), sum(len(r) for r in consumed.values())


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", help="fit the noise to this study's confirmation (default: the recorded demo's)")
    parser.add_argument("--draws", type=int, default=2000, help="confirmations per setting (default: 2000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5], help="the most seeds (default: 3 5)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                        help="gaps below the best, times the recorded ones (default: 0.5 1 2)")
    args = parser.parse_args(argv)
    model = from_study(args.study) if args.study else fit(RECORDED, RECORDED_IMAGES, "the recorded demo confirmation")
    print(f"noise model from {model.source}: {len(model.entrants)} candidates, seed noise sd "
          f"{100 * model.sd:.2f} pp (pooled), seed effects sd {100 * model.seed_sd:.2f} pp, one image "
          f"{100 * model.step:.2f} pp")
    for e, m, se in zip(model.entrants, model.means, model.se):
        print(f"  trial {e.number:3d}{' (baseline)' if e.baseline else '':11s} {e.gflops:.6f} GFLOPs  "
              f"mean {100 * m:6.2f}% +- {100 * se:.2f}")
    recorded = {e.number: dict(r) for e, r in zip(model.entrants, model.runs)}
    seeds = min(len(r) for r in recorded.values())
    for rule in ("dominated", "leader"):
        fixed, raced, used = replay(model, recorded, seeds, rule == "dominated")
        print(f"  its own records replayed ({rule}, at most {seeds} seeds): the fixed design picks {fixed}, the race "
              f"{raced}, with {used} of {seeds * len(model.entrants)} runs")
    print(f"\n{args.draws} simulated confirmations per row; same: the race picks what the fixed design picks "
          f"(Wilson 95%); runs: the race's over the fixed design's (mean, t 95%)")
    print(f"{'rule':9s} {'seeds':>5s} {'scale':>5s}  {'same max-acc':>20s}  {'same knee':>20s}  {'runs':>18s}")
    rng = np.random.default_rng(0)
    for rule in ("dominated", "leader"):
        for seeds in args.seeds:
            for scale in args.scales:
                same = {"max-acc": 0, "knee": 0}
                ratios = []
                for _ in range(args.draws):
                    runs = draw(model, rng, seeds, scale)
                    fixed, raced, used = replay(model, runs, seeds, rule == "dominated")
                    for how in same:
                        same[how] += fixed[how] == raced[how]
                    ratios.append(used / (seeds * len(model.entrants)))
                cells = []
                for how in ("max-acc", "knee"):
                    low, high = wilson(same[how], args.draws)
                    cells.append(f"{same[how] / args.draws:6.1%} [{low:5.1%}, {high:5.1%}]")
                mean = statistics.fmean(ratios)
                half = 1.96 * statistics.stdev(ratios) / math.sqrt(len(ratios))
                print(f"{rule:9s} {seeds:5d} {scale:5.2f}  {cells[0]:>20s}  {cells[1]:>20s}  "
                      f"{mean:5.1%} [{mean - half:5.1%}, {mean + half:5.1%}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
