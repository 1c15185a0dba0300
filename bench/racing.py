"""Racing against the fixed design: a simulation whose noise comes from a real confirmation's records.

    python bench/racing.py                            # the demo confirmation recorded below, 2,000 draws each
    python bench/racing.py --study studies/demo       # the noise of another confirmation's records
    python bench/racing.py --draws 500 --seeds 3 --scales 1
    python bench/racing.py --replay 30                # then the confirmations of 30 replayed searches (minutes)
    python bench/racing.py --seeds 3 --futility 0.15 --replay 30 --replay-from 30 --replay-scales demo,paper-w8

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
design's (mean, t 95 % interval over the draws). The rules replayed: ``dominated`` (a
candidate stops when one no costlier is clearly ahead), ``leader`` (single-objective
F-Race: anything clearly below the leader stops, the cheap end too) and ``curt F`` (the
default: dominated, and curtailed at each ``--futility`` F: a candidate stops when the
fixed design would pick it with a chance under F, the race ends when it would pick what
the race picks with a chance over 1 - F), each without and with the search's own runs in
the race's noise estimate (``--own``: off, or their selection bias: the own run of a
candidate, not of the baseline, carries |N(0, bias x the seed noise)| more).

``--replay N`` then races on real searches' candidates: N searches (seeds from
``--replay-from``) of the paper-w8 scale (``--replay-scales``; the default design)
replayed on `bench/replay.py`'s table of real learning curves, each confirmation's
candidates (`search.confirmed.choose_candidates`) with the table's mean as their true
top-1 and the table's pooled seed noise; each search's own runs are the table's runs it
observed, so their selection is the search's own. Per rule it prints the same-pick
rate, the true top-1 of both designs' max-acc picks, and the race's runs.

What it is not. No training runs here: every number after the noise model's fit comes
from the model, not from a search. It assumes normal noise, one seed noise for every
config, no divergence, and that the recorded confirmation's shape (how many candidates,
how close, at which GFLOPs) is typical; a real search draws different candidates each
time, which the scaled gaps only stand in for. "Same pick" compares racing with the fixed
design on the same draws, not either with the truth.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import confirmed, pareto, racing, stats  # noqa: E402
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


def draw(model: Model, rng: np.random.Generator, seeds: int, scale: float,
         own_bias: float = 0.0) -> tuple[dict[int, dict[int, float]], dict[int, float]]:
    """One confirmation's fixed-design runs (trial -> {seed 1..seeds: top-1}) and the search's own runs.

    The own run (seed 0, shared) was selected for being high: a candidate's carries a bias
    of |N(0, own_bias x the seed noise)|, a different one each (the luckiest the most); the
    baseline's, a fixed row, none.
    """
    mu = model.means + rng.normal(0.0, model.se)
    mu = mu.max() + scale * (mu - mu.max())
    effects = rng.normal(0.0, model.seed_sd, size=seeds + 1)
    runs, own = {}, {}
    for i, e in enumerate(model.entrants):
        values = mu[i] + effects + rng.normal(0.0, model.sd, size=seeds + 1)
        if not e.baseline:
            values[0] += abs(rng.normal(0.0, own_bias * model.sd))
        rounded = [float(np.clip(np.round(v / model.step) * model.step, 0.0, 1.0)) for v in values]
        own[e.number] = rounded[0]
        runs[e.number] = {s: v for s, v in enumerate(rounded) if s > 0}
    return runs, own


def picks(model: Model, runs: dict[int, dict[int, float]]) -> dict[str, int]:
    gflops = {e.number: e.gflops for e in model.entrants}
    return pareto.picks([pareto.Point(n, statistics.fmean(r.values()), gflops[n]) for n, r in runs.items() if r])


@dataclass(frozen=True)
class Rule:
    """A race's stopping rule: a candidate stops when one no costlier is clearly ahead (``by_cost``) or when
    anything is; and, curtailed, when it would change the fixed design's picks with a chance under ``futility``."""

    name: str
    by_cost: bool
    futility: float = 0.0


def rules(futilities: Sequence[float]) -> list[Rule]:
    return [Rule("dominated", True), Rule("leader", False), *(Rule(f"curt {f:.0%}", True, f) for f in futilities)]


def replay(model: Model, runs: dict[int, dict[int, float]], seeds: int, rule: Rule,
           own: dict[int, float] | None = None) -> tuple[dict, dict, int]:
    """(fixed picks, race picks, runs the race consumed) on one confirmation's runs."""
    state = racing.race(model.entrants, list(range(1, seeds + 1)), runs, {}, step=model.step, by_cost=rule.by_cost,
                        own=own, futility=rule.futility)
    consumed: dict[int, dict[int, float]] = {e.number: {} for e in model.entrants}
    for r in state.rounds:
        for n in r.ran:
            consumed[n][r.seed] = runs[n][r.seed]
    return picks(model, runs), picks(model, consumed), sum(len(r) for r in consumed.values())


# -- races on the replay table's searches -------------------------------------------------------


def table_noise(table: Any) -> Model:
    """The seed noise of the replay table (`bench/curves.py`): every config's final top-1 on its seeds, pooled."""
    finals = sorted({c.final(s) for c in table.configs for s in c.curves if math.isfinite(c.final(s))})
    images = round(1.0 / min(b - a for a, b in zip(finals, finals[1:])))  # top-1 moves in steps of one image
    recorded = {c.config: (c.gflops, c.paper_row == "baseline",
                           {s: c.final(s) for s in c.curves if math.isfinite(c.final(s))}) for c in table.configs}
    return fit({n: r for n, r in recorded.items() if len(r[2]) == table.seeds}, images, "the replay table")


def replay_model(noise: Model, candidates: Sequence[Any]) -> tuple[Model, dict[int, float]]:
    """A replayed search's confirmation: its candidates with the table's means as their truth and the table's
    noise, and the search's own runs of them.

    An own run is the table's run the search observed, moved away from the table mean to twice its distance
    (the mean holds that run, so the raw distance is half a fresh run's): its selection bias enters at full
    size, the other seed's noise on top, so the race's noise estimate errs large.
    """
    model = Model([Entrant(c.number, c.gflops, c.baseline) for c in candidates], np.array([c.true for c in candidates]),
                  np.zeros(len(candidates)), noise.sd, noise.seed_sd, noise.step, noise.source, [])
    own = {c.number: float(np.clip(c.true + 2 * (c.own - c.true), 0.0, 1.0)) for c in candidates if c.own is not None}
    return model, own


def replay_table(searches: range, draws: int, seed_counts: Sequence[int], workers: int, chosen: Sequence[Rule],
                 scale: str) -> None:
    """Race against the fixed design on the confirmations of the replayed searches of these seeds at ``scale``."""
    import replay as replay_bench

    table = replay_bench.Table(replay_bench.curves.DEFAULT_OUT)
    replay_bench._TABLE = table
    replay_bench.warm_flops(table)
    noise = table_noise(table)
    spec = table.spec.replace(**replay_bench.SCALES[scale])
    outcomes = replay_bench.run_many(table, spec, "default", searches, workers)
    confirmations = [replay_model(noise, o.candidates) for o in outcomes]
    sizes = [len(o.candidates) for o in outcomes]
    fmt = replay_bench.fmt
    for seeds in seed_counts:
        print(f"\nthe replay table: {len(table.configs)} configs x {table.seeds} seeds, seed noise sd "
              f"{100 * noise.sd:.2f} pp (pooled, {len(noise.entrants)} configs), seed effects sd "
              f"{100 * noise.seed_sd:.2f} pp, one image {100 * noise.step:.2f} pp; {len(searches)} replayed searches "
              f"(seeds {searches.start}-{searches.stop - 1}, "
              f"{scale}, the default design), {min(sizes)}-{max(sizes)} candidates each, {draws} confirmations "
              f"each, at most {seeds} seeds")
        print(f"the picks' true top-1 (table means; mean and t 95% over the searches): the single run's max-acc "
              f"{fmt([o.max_acc for o in outcomes])}, the candidates' exact means' "
              f"{fmt([o.confirmed for o in outcomes])}")
        print("same: the race picks what the fixed design picks, or a config of the same true top-1 (Wilson 95%); "
              "fixed, race: the true top-1 of their max-acc picks (mean and t 95% over the searches); runs: the "
              "race's over the fixed design's (%)")
        print(f"{'rule':9s} {'own':>4s}  {'same max-acc':>20s}  {'fixed':>14s}  {'race':>14s}  {'same knee':>20s}  "
              f"{'runs':>14s}")
        rng = np.random.default_rng(0)
        for rule, with_own in itertools.product(chosen, (False, True)):
            same = {"max-acc": 0, "knee": 0}
            fixed_true, race_true, ratios = [], [], []
            for model, own in confirmations:
                true = dict(zip((e.number for e in model.entrants), model.means))
                fixed_acc, race_acc, used = [], [], 0
                for _ in range(draws):
                    runs, _ = draw(model, rng, seeds, 1.0)
                    fixed, raced, n = replay(model, runs, seeds, rule, own if with_own else None)
                    for how in same:
                        same[how] += abs(true[fixed[how]] - true[raced[how]]) < 1e-9
                    fixed_acc.append(true[fixed["max-acc"]])
                    race_acc.append(true[raced["max-acc"]])
                    used += n
                fixed_true.append(statistics.fmean(fixed_acc))
                race_true.append(statistics.fmean(race_acc))
                ratios.append(used / (draws * seeds * len(model.entrants)))
            total = draws * len(confirmations)
            print(f"{rule.name:9s} {'on' if with_own else 'off':>4s}  {same_cell(same['max-acc'], total):>20s}  "
                  f"{fmt(fixed_true):>14s}  {fmt(race_true):>14s}  {same_cell(same['knee'], total):>20s}  "
                  f"{fmt(ratios, digits=1):>14s}")


def same_cell(k: int, n: int) -> str:
    """k of n as a share with its Wilson 95% interval."""
    low, high = wilson(k, n)
    return f"{k / n:6.1%} [{low:5.1%}, {high:5.1%}]"


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
    parser.add_argument("--futility", type=float, nargs="+", default=[racing.FUTILITY],
                        help=f"curtailed races at these futilities (default: search.racing's, {racing.FUTILITY})")
    parser.add_argument("--own", nargs="+", default=["off", "0", "1", "2"],
                        help="the search's own runs in the race's noise estimate: off, or their selection bias in "
                             "seed-noise sds (default: off 0 1 2)")
    parser.add_argument("--replay", type=int, default=0, metavar="SEARCHES",
                        help="then race on the confirmations of this many replayed paper-scale searches "
                             "(bench/replay.py)")
    parser.add_argument("--replay-scales", default="paper-w8",
                        help="bench/replay.py's scales of those searches, comma-separated (default: paper-w8; "
                             "demo: the demo spec's 12 trials and its confirmation of the front's best)")
    parser.add_argument("--replay-from", type=int, default=0, metavar="SEED",
                        help="the first replayed search's seed (default: 0; 30 with --replay 30: 30 others)")
    parser.add_argument("--replay-draws", type=int, default=200,
                        help="confirmations per replayed search (default: 200)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the replayed searches (default: 2)")
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
    chosen = rules(args.futility)
    for rule in chosen:
        fixed, raced, used = replay(model, recorded, seeds, rule)
        print(f"  its own records replayed ({rule.name}, at most {seeds} seeds): the fixed design picks {fixed}, "
              f"the race {raced}, with {used} of {seeds * len(model.entrants)} runs")
    print(f"\n{args.draws} simulated confirmations per row; same: the race picks what the fixed design picks "
          f"(Wilson 95%); runs: the race's over the fixed design's (mean, t 95%)")
    print(f"{'rule':9s} {'seeds':>5s} {'scale':>5s} {'own':>4s}  {'same max-acc':>20s}  {'same knee':>20s}  "
          f"{'runs':>18s}")
    rng = np.random.default_rng(0)
    for rule in chosen:
        for seeds in args.seeds:
            for scale, own_setting in itertools.product(args.scales, args.own):
                same = {"max-acc": 0, "knee": 0}
                ratios = []
                for _ in range(args.draws):
                    runs, own = draw(model, rng, seeds, scale, 0.0 if own_setting == "off" else float(own_setting))
                    fixed, raced, used = replay(model, runs, seeds, rule, None if own_setting == "off" else own)
                    for how in same:
                        same[how] += fixed[how] == raced[how]
                    ratios.append(used / (seeds * len(model.entrants)))
                cells = [same_cell(same[how], args.draws) for how in ("max-acc", "knee")]
                mean = statistics.fmean(ratios)
                half = 1.96 * statistics.stdev(ratios) / math.sqrt(len(ratios))
                print(f"{rule.name:9s} {seeds:5d} {scale:5.2f} {own_setting:>4s}  {cells[0]:>20s}  {cells[1]:>20s}  "
                      f"{mean:5.1%} [{mean - half:5.1%}, {mean + half:5.1%}]")
    if args.replay:
        for scale in args.replay_scales.split(","):
            replay_table(range(args.replay_from, args.replay_from + args.replay), args.replay_draws, args.seeds,
                         args.workers, chosen, scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
