"""Search designs compared on many seeds in simulated time: the real search code replayed on tabulated curves.

    python bench/replay.py                  # every scale and method, 30 seeds each: see the note for the time
    python bench/replay.py --quick          # 8 seeds, one paper scale: under 10 minutes on 2 cores
    python bench/replay.py --scales paper-w8 --methods default,random --seeds 40

Each search is `search.simulate.simulate`: the study, sampler, searcher and scheduler that
``python -m search.run`` builds, with the clock advanced by the recorded seconds of each
epoch of `bench/curves.py`'s table (``bench/data/demo_curves.csv``: the fine-tuning demo's
space, every config fine-tuned with 2 seeds). A proposal the table lacks takes the curve of
its nearest tabulated config of the same GFLOPs (same image size and SCRA blocks): the
distance sums, over the other params, the gap scaled to the param's range (log ranges in
log) and 1 per categorical mismatch; each trial reports one seed's curve of that config,
drawn from (search seed, trial number).

Per scale and method, over the seeds (mean and 95% t-interval):

* ``max-acc``: the true quality of what the search would export without a confirmation
  (the table's mean top-1 over seeds, last epoch, of the config behind the front's most
  accurate single run) and its regret against the table's best config; ``knee``: the
  same for the knee pick, with its GFLOPs share of the budget limit; ``confirmed``: the
  max-acc pick a confirmation would make if it measured its candidates
  (`search.confirmed.choose_candidates`: the spec's ``confirm: top``, the knee, the
  baseline, the best paper row) exactly, i.e. on their table means;
* ``HV``: hypervolume of the true values (table means) of the COMPLETE within-budget
  trials; GFLOPs as a share of the budget limit. Headlined with the reference point at
  (baseline's true top-1, the limit): only what beats the paper baseline counts, so the
  cheapest image size carries no area for being cheap. ``HV0`` takes top-1 = 0 (the
  live bench's reference), where the 32-px points dominate;
* ``compute``: train-hours (simulated, summed over workers) and epochs spent; and
  ``to random``: the train-seconds at which the search's max-acc pick first reached random
  search's mean final quality, as a share of random search's compute (median over the
  seeds that reached it; ``reached`` says how many did).

Scales: ``demo`` (the demo spec: 12 trials with the paper's 6 rows, 2 workers, rungs 1, 2,
4 of 8) and ``paper-w4`` / ``paper-w8`` (the paper specs: 64 trials with the 6 rows, 4 or 8
workers, reduction factor 3 and grace 1: rungs 1 and 3 of the table's 8 epochs, as foodx's
are of its 10). ``--equal-compute`` (the default) gives every method random search's
train-seconds at that scale (measured first, in the same invocation) instead of its number
of trials, so early stopping's savings buy more trials.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import curves  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna.distributions import CategoricalDistribution  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402
from scipy.stats import t as t_dist  # noqa: E402

from search import attrs, budget, confirmed, pareto, preflight, simulate, tuner  # noqa: E402
from search import spec as spec_mod  # noqa: E402
from search import study as study_mod  # noqa: E402


@dataclass(frozen=True)
class Method:
    """A search design: spec fields, then attributes set on the sampler and the scheduler those build."""

    spec: Mapping[str, Any] = field(default_factory=dict)
    sampler: Mapping[str, Any] = field(default_factory=dict)  # on `search.sampler.StoppedTrialSampler`
    scheduler: Mapping[str, Any] = field(default_factory=dict)  # on `search.moasha.MOASHAScheduler`
    unwrapped: bool = False  # the stopped-trial sampler's inner sampler alone (how gp + fifo ran before)


METHODS: dict[str, Method] = {
    "random": Method({"sampler": "random", "scheduler": "fifo", "learn_from_stopped": False}),
    "tpe-asha": Method({"sampler": "tpe", "scheduler": "asha", "learn_from_stopped": False}),
    "moasha-random": Method({"sampler": "random", "scheduler": "moasha"}),
    "default": Method(),
    # the review's variants of the default (the note has their before/after)
    "view-d+1": Method(sampler={"min_trials": None}),
    "view-bohb": Method(sampler={"min_trials": None, "below": "out"}),
    "over-budget-out": Method(sampler={"over_budget": "out"}),
    "cost-levels": Method(scheduler={"cost_tolerance": 0.05}),
    "no-paper-rows": Method({"paper": False}),
    "random-no-paper-rows": Method({"sampler": "random", "scheduler": "fifo", "learn_from_stopped": False,
                                    "paper": False}),
    "gp-fifo": Method({"sampler": "gp", "scheduler": "fifo", "learn_from_stopped": False}),
    "gp-fifo-unwrapped": Method({"sampler": "gp", "scheduler": "fifo", "learn_from_stopped": False}, unwrapped=True),
}
DEFAULT_METHODS = ("random", "tpe-asha", "moasha-random", "default")
PAPER_CONFIRM = {"top": 4, "seeds": 3, "race": True}
SCALES: dict[str, dict[str, Any]] = {
    "demo": {},
    "paper-w4": {"trials": 64, "concurrency": 4, "grace_period": 1, "reduction_factor": 3, "confirm": PAPER_CONFIRM},
    "paper-w8": {"trials": 64, "concurrency": 8, "grace_period": 1, "reduction_factor": 3, "confirm": PAPER_CONFIRM},
}
BASELINE = "random"  # the method the others are measured against
LEVEL = 0.95


class Table:
    """The tabulated configs, indexed by GFLOPs, and the map from a proposal to its nearest one."""

    def __init__(self, path: Path) -> None:
        self.meta, self.configs = curves.load(path)
        self.spec = spec_mod.from_dict(self.meta["spec"])
        self.base = self.spec.base_config()
        self.seeds = int(self.meta["seeds"])
        self.by_gflops: dict[float, list[curves.TableConfig]] = {}
        for c in self.configs:
            self.by_gflops.setdefault(_key(c.gflops), []).append(c)
        self.best = max(c.mean_final() for c in self.configs)
        self.baseline = next(c for c in self.configs if c.paper_row == "baseline").mean_final()
        self.baseline_gflops = preflight.baseline_gflops(self.base, self.spec.image_size)
        self.limit = budget.limit(self.baseline_gflops, self.spec.budget)

    def nearest(self, trial: FrozenTrial) -> curves.TableConfig:
        """The tabulated config closest to ``trial``'s params among those of its GFLOPs (else among all)."""
        pool = self.by_gflops.get(_key(float(trial.user_attrs[attrs.GFLOPS]))) or self.configs
        return min(pool, key=lambda c: (distance(trial.params, c.params, trial.distributions), c.config))


def _key(gflops: float) -> float:
    return round(gflops, 7)


def distance(a: Mapping[str, Any], b: Mapping[str, Any], dists: Mapping[str, Any]) -> float:
    """Params ``a`` (with ``dists``) to ``b``: each float param's gap over its range (log ranges in log),
    1 per differing categorical or param only one of them has."""
    total = 0.0
    for name in set(a) | set(b):
        if name not in a or name not in b:
            total += 1.0
            continue
        dist = dists.get(name)
        if dist is None or isinstance(dist, CategoricalDistribution):
            total += float(a[name] != b[name])
            continue
        low, high, x, y = float(dist.low), float(dist.high), float(a[name]), float(b[name])
        if dist.log:
            low, high, x, y = math.log(low), math.log(high), math.log(x), math.log(y)
        total += abs(x - y) / (high - low) if high > low else 0.0
    return total


@dataclass(frozen=True)
class Confirmable:
    """A confirmation candidate of a simulated search (`search.confirmed.choose_candidates`), for `bench/racing.py`."""

    number: int
    gflops: float
    baseline: bool
    true: float  # the table's mean final top-1 of its config
    own: float | None  # the search's own run of it, when that trained every epoch (else None)


@dataclass(frozen=True)
class Outcome:
    """One simulated search, judged on the table's true values."""

    max_acc: float  # true top-1 of the max-acc pick (NaN: no feasible trial)
    confirmed: float  # true top-1 of the max-acc pick on the true means of the confirmation's candidates
    knee: float
    knee_share: float  # the knee pick's GFLOPs / the budget limit
    hv: float  # reference (baseline's true top-1, limit)
    hv0: float  # reference (0, limit)
    train_seconds: float
    epochs: int
    trials: int  # trained
    over_budget: int  # proposals pruned before training
    anytime: list[tuple[float, float]]  # (train-seconds so far, true top-1 of the max-acc pick so far)
    candidates: tuple[Confirmable, ...] = ()


def replay(table: Table, spec: spec_mod.StudySpec, seed: int, max_train_seconds: float = math.inf,
           method: Method = Method()) -> Outcome:
    """Simulate ``spec`` with ``method`` (seeded ``seed``) on ``table``; judge its picks and front on true values."""
    mapped: dict[int, curves.TableConfig] = {}

    def curve_of(trial: FrozenTrial) -> simulate.Curve:
        config = mapped[trial.number] = table.nearest(trial)
        run_seed = int(np.random.default_rng([seed, trial.number]).integers(table.seeds))
        return simulate.Curve(config.curves[run_seed], config.seconds[run_seed])

    spec = spec.replace(**method.spec, seed=seed)
    full = spec.trained_epochs(table.base)
    sampler = study_mod.make_sampler(spec)
    if method.unwrapped:
        sampler = sampler.inner
    scheduler = tuner.make_scheduler(spec, (), full)
    for target, changes in ((sampler, method.sampler), (scheduler, method.scheduler)):
        for name, value in changes.items():
            if not hasattr(target, name):
                raise ValueError(f"{type(target).__name__} has no {name!r} to set")
            setattr(target, name, value)
    sim = simulate.simulate(spec, table.base, curve_of, measure=preflight.measure_fn(),
                            baseline_gflops=table.baseline_gflops, max_train_seconds=max_train_seconds,
                            sampler=sampler, scheduler=scheduler)
    trials = {t.number: t for t in sim.study.get_trials(deepcopy=False)}
    complete = [trials[f.number] for f in sim.finished
                if trials[f.number].state == TrialState.COMPLETE and budget.is_feasible(trials[f.number])]

    def true_of(number: int) -> float:
        return mapped[number].mean_final()

    def picks(done: Sequence[FrozenTrial]) -> dict[str, int]:
        return pareto.picks([pareto.Point(t.number, float(t.values[0]), float(t.values[1])) for t in done])

    anytime, done = [], []
    for f in sim.finished:
        if trials[f.number] in complete:
            done.append(trials[f.number])
        chosen = picks(done)
        anytime.append((f.train_seconds, true_of(chosen["max-acc"]) if chosen else math.nan))
    chosen = picks(complete)
    candidates = confirmed.choose_candidates(list(trials.values()), pareto.pareto_front(sim.study),
                                             spec.confirm["top"] if spec.confirm else 0)
    on_means = pareto.picks([pareto.Point(c.number, true_of(c.number), c.gflops) for c in candidates])
    own = confirmed.own_runs(list(trials.values()), candidates, full)
    true_points = [(true_of(t.number), float(t.values[1]) / table.limit) for t in complete]
    return Outcome(
        max_acc=true_of(chosen["max-acc"]) if chosen else math.nan,
        confirmed=true_of(on_means["max-acc"]) if on_means else math.nan,
        knee=true_of(chosen["knee"]) if chosen else math.nan,
        knee_share=float(trials[chosen["knee"]].values[1]) / table.limit if chosen else math.nan,
        hv=pareto.hypervolume(true_points, ref_gflops=1.0, ref_top1=table.baseline),
        hv0=pareto.hypervolume(true_points, ref_gflops=1.0),
        train_seconds=sim.train_seconds, epochs=sim.epochs, trials=sim.searcher.counted, anytime=anytime,
        over_budget=sum(1 for t in trials.values() if t.user_attrs.get(attrs.OVER_BUDGET)),
        candidates=tuple(Confirmable(c.number, c.gflops, confirmed.is_baseline(c.role), true_of(c.number),
                                     own.get(c.number)) for c in candidates),
    )


# -- many seeds in parallel ------------------------------------------------------------------------

_TABLE: Table | None = None  # set before the pool forks: every worker shares the loaded table and FLOPs cache


def _job(args: tuple[dict[str, Any], str, int, float]) -> Outcome:
    spec_fields, method, seed, max_seconds = args
    assert _TABLE is not None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return replay(_TABLE, spec_mod.from_dict(spec_fields), seed, max_seconds, METHODS[method])


def run_many(table: Table, spec: spec_mod.StudySpec, method: str, seeds: Sequence[int], workers: int,
             max_train_seconds: float = math.inf) -> list[Outcome]:
    jobs = [(spec_mod.to_dict(spec), method, s, max_train_seconds) for s in seeds]
    if workers <= 1:
        return [_job(j) for j in jobs]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_job, jobs, chunksize=1)


def warm_flops(table: Table) -> None:
    """Measure every architecture the space can propose once, before the pool forks (workers inherit the cache)."""
    import spaces

    sizes = sorted({int(c.params["image_size"]) for c in table.configs})
    measure = preflight.measure_fn()
    for size in sizes:
        for mask in range(16):
            for kernel in (1, 3):
                params = {"image_size": size, "scra_kernel": kernel}
                params |= {f"scra_after_{s}": bool(mask >> s & 1) for s in range(4)}
                cfg = table.base.replace(**{"data.image_size": size, "model.scra_stages": [s for s in range(4)
                                            if params[f"scra_after_{s}"]], "model.scra_kernel": kernel})
                measure(cfg)
    spaces.get(table.spec.space)


# -- the table of results ----------------------------------------------------------------------------


def interval(values: Sequence[float]) -> tuple[float, float]:
    """(mean, 95% t half-width) of the finite values; NaN half-width below 2 values."""
    xs = [v for v in values if math.isfinite(v)]
    if not xs:
        return math.nan, math.nan
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, math.nan
    return mean, float(t_dist.ppf(0.5 + LEVEL / 2, len(xs) - 1)) * statistics.stdev(xs) / math.sqrt(len(xs))


def fmt(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    mean, half = interval(values)
    return f"{scale * mean:.{digits}f} ± {scale * half:.{digits}f}"


def to_target(outcomes: Sequence[Outcome], target: float, reference_seconds: float) -> str:
    """Median share of ``reference_seconds`` at which the max-acc pick first reached ``target``, and how often."""
    reached = [next((s for s, q in o.anytime if q >= target - 1e-12), math.nan) for o in outcomes]
    hit = [s / reference_seconds for s in reached if math.isfinite(s)]
    share = f"{statistics.median(hit):.2f}" if hit else "never"
    return f"{share} ({len(hit)}/{len(outcomes)})"


def report(table: Table, scale: str, results: Mapping[str, list[Outcome]]) -> list[str]:
    base = results[BASELINE]
    target = statistics.fmean(o.max_acc for o in base)
    seconds = statistics.fmean(o.train_seconds for o in base)
    lines = [f"## {scale}: {len(base)} seeds; table best {100 * table.best:.2f}, baseline {100 * table.baseline:.2f} "
             f"(true top-1 %); ± = 95% t-interval",
             "| method | max-acc true | regret | confirmed | knee true | knee GFLOPs/limit | HV (ref baseline) "
             "| HV0 (ref 0) | trials (over budget) | train-h | epochs | to random |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, outs in results.items():
        lines.append(
            f"| {method} | {fmt([o.max_acc for o in outs])} | {fmt([table.best - o.max_acc for o in outs])} "
            f"| {fmt([o.confirmed for o in outs])} "
            f"| {fmt([o.knee for o in outs])} | {fmt([o.knee_share for o in outs], 1, 3)} "
            f"| {fmt([o.hv for o in outs], 1000, 2)}e-3 | {fmt([o.hv0 for o in outs], 1, 4)} "
            f"| {statistics.fmean(o.trials for o in outs):.1f} ({statistics.fmean(o.over_budget for o in outs):.1f}) "
            f"| {statistics.fmean(o.train_seconds for o in outs) / 3600:.2f} "
            f"| {statistics.fmean(o.epochs for o in outs):.0f} | {to_target(outs, target, seconds)} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=curves.DEFAULT_OUT)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--scales", default=",".join(SCALES))
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"of {', '.join(METHODS)}")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--equal-trials", action="store_true",
                        help="every method trains the scale's number of trials (default: random search's compute)")
    parser.add_argument("--trials", type=int, help="trained trials per search at every scale (default: the scale's)")
    parser.add_argument("--quick", action="store_true", help="8 seeds, scales demo and paper-w8")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.scales = 8, "demo,paper-w8"
    global _TABLE
    _TABLE = table = Table(args.table)
    warm_flops(table)
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = sorted(set(methods) - set(METHODS)) + sorted(set(args.scales.split(",")) - set(SCALES))
    if unknown:
        parser.error(f"unknown method or scale {', '.join(unknown)} (methods: {', '.join(METHODS)}; "
                     f"scales: {', '.join(SCALES)})")
    methods = [BASELINE] + [m for m in methods if m != BASELINE]
    started = time.perf_counter()
    print(f"table {args.table.name}: {len(table.configs)} configs x {table.seeds} seeds, {table.meta['epochs']} "
          f"epochs (built at {table.meta['commit']}); {args.seeds} seeds per method", flush=True)
    for scale in args.scales.split(","):
        spec = table.spec.replace(**SCALES[scale])
        if args.trials:
            spec = spec.replace(trials=args.trials)
        results: dict[str, list[Outcome]] = {}
        budget_seconds = math.inf
        for method in methods:
            method_spec = spec
            if method != BASELINE and not args.equal_trials:
                method_spec = spec.replace(trials=4 * spec.trials)
            t0 = time.perf_counter()
            results[method] = run_many(table, method_spec, method, range(args.seeds), args.workers,
                                       math.inf if method == BASELINE else budget_seconds)
            if method == BASELINE and not args.equal_trials:
                budget_seconds = statistics.fmean(o.train_seconds for o in results[method])
            print(f"  {scale} {method}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        print("\n".join(["", *report(table, scale, results)]), flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s on {args.workers} workers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
