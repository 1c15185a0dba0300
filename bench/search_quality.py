"""Search quality per train-second: the default search against random search and the previous default.

    python bench/search_quality.py                          # 3 seeds x 3 methods
    python bench/search_quality.py --seeds 1 --trials 6     # a quick look
    python bench/search_quality.py --trials 24 --paper      # longer searches, with the paper's rows: hours

Each method runs the demo task (the same generated data, the same space, budget and
number of trained trials) once per seed, into a temporary study. As `make demo`: every
trial fine-tunes the demo's pretrained weights (`fgmodel.pretrain_demo`, made once under
``--data-root`` by the first search's pre-flight), at 40 px, so that two image sizes fit
the budget (32, 40), for the spec's epochs (5: rungs at 1, 2 and 4). Each search stops
before the demo's confirmation, which would re-train the same few configs in every method.

* ``random-fifo``: random sampler, no early stopping (every trial runs every epoch);
* ``tpe-asha``: TPE on Optuna's view of the study + single-objective ASHA on val top-1
  (the previous default);
* ``default``: the spec's default, MOASHA on (val top-1, GFLOPs) + TPE learning from the
  stopped trials (`search.sampler.StoppedTrialSampler`).

Per method it prints the 2-D hypervolume of the feasible front (COMPLETE within-budget
trials; GFLOPs divided by the budget limit, reference point GFLOPs = the limit, top-1 = 0),
its mean and spread over the seeds, the train-seconds spent (the trials' ``train_seconds``,
stopped ones included) and hypervolume per 1,000 train-seconds; then the default's ratio to
random search, and the train-seconds the default needed to reach random search's mean
hypervolume (trials in the order they finished; target: at most 60% of random search's).

The paper's Table 1 rows are left out by default (``--paper`` puts them in): they are the
same trials in every method and would blur the difference between the methods.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from search import attrs, budget, run, spec  # noqa: E402
from search.pareto import hypervolume  # noqa: E402
from search.searcher import counted_trials  # noqa: E402

METHODS = {
    "random-fifo": {"sampler": "random", "scheduler": "fifo", "learn_from_stopped": False},
    "tpe-asha": {"sampler": "tpe", "scheduler": "asha", "learn_from_stopped": False},
    "default": {},
}
TARGET_SHARE = 0.6  # the default reaches random search's mean hypervolume within 60% of its train-seconds


@dataclass
class Run:
    method: str
    seed: int
    hv: float
    train_seconds: float
    wall_seconds: float
    trained: int
    complete: int
    anytime: list[tuple[float, float]]  # (train-seconds so far, hypervolume so far), in finishing order


def front_hypervolume(trials: list[FrozenTrial], limit: float) -> float:
    """Hypervolume of the COMPLETE within-budget trials, GFLOPs over the limit, reference (top-1 0, GFLOPs 1)."""
    points = [(t.values[0], t.values[1] / limit) for t in trials
              if t.state == TrialState.COMPLETE and budget.is_feasible(t)]
    return hypervolume(points, ref_gflops=1.0)


def measure(method: str, seed: int, outcome: run.Outcome) -> Run:
    study = outcome.study
    limit = budget.limit(study.user_attrs[attrs.BASELINE_GFLOPS], study.user_attrs["budget"])
    trials = study.get_trials(deepcopy=False)
    done = sorted((t for t in trials if t.datetime_complete), key=lambda t: (t.datetime_complete, t.number))
    anytime, spent = [], 0.0
    for i, t in enumerate(done):
        spent += float(t.user_attrs.get(attrs.TRAIN_SECONDS, 0.0))
        anytime.append((spent, front_hypervolume(done[: i + 1], limit)))
    return Run(method, seed, front_hypervolume(trials, limit), spent, outcome.wall_seconds, counted_trials(study),
               sum(t.state == TrialState.COMPLETE for t in trials), anytime)


def reached_at(r: Run, target: float) -> float:
    """Train-seconds after which ``r``'s front first reached ``target`` (inf if never)."""
    return next((spent for spent, hv in r.anytime if hv >= target), math.inf)


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def table(runs: list[Run]) -> list[str]:
    methods = list(dict.fromkeys(r.method for r in runs))
    lines = [f"{'method':12s} {'HV mean':>8s} {'HV sd':>7s}  {'HV per seed':24s} {'train-s':>8s} "
             f"{'HV/1000 train-s':>15s} {'trained':>7s} {'COMPLETE':>8s} {'wall s':>7s}"]
    for m in methods:
        rs = [r for r in runs if r.method == m]
        hv = [r.hv for r in rs]
        train = statistics.mean(r.train_seconds for r in rs)
        lines.append(
            f"{m:12s} {statistics.mean(hv):8.4f} {_spread(hv):7.4f}  {' '.join(f'{h:.4f}' for h in hv):24s} "
            f"{train:8.0f} {1000 * statistics.mean(hv) / train if train else 0.0:15.4f} "
            f"{statistics.mean(r.trained for r in rs):7.1f} {statistics.mean(r.complete for r in rs):8.1f} "
            f"{statistics.mean(r.wall_seconds for r in rs):7.0f}"
        )
    return lines


def verdict(runs: list[Run]) -> list[str]:
    """The default against random search: hypervolume and train-seconds ratios, and the 60% target."""
    ours = [r for r in runs if r.method == "default"]
    rand = [r for r in runs if r.method == "random-fifo"]
    if not ours or not rand:
        return ["(the default against random search needs both methods)"]
    hv_ours, hv_rand = statistics.mean(r.hv for r in ours), statistics.mean(r.hv for r in rand)
    t_ours, t_rand = statistics.mean(r.train_seconds for r in ours), statistics.mean(r.train_seconds for r in rand)
    lines = [f"default / random search: hypervolume x{hv_ours / hv_rand if hv_rand else math.inf:.2f}, "
             f"train-seconds x{t_ours / t_rand if t_rand else math.inf:.2f}"]
    reach = [reached_at(r, hv_rand) for r in ours]
    got = [x for x in reach if math.isfinite(x)]
    share = statistics.mean(reach) / t_rand if t_rand and len(got) == len(reach) else math.inf
    where = ", ".join("never" if not math.isfinite(x) else f"{x:.0f}" for x in reach)
    lines.append(f"default reaches random search's mean hypervolume {hv_rand:.4f} after train-seconds: {where} "
                 f"(seeds); {len(got)} of {len(reach)} seeds reached it")
    status = "met" if share <= TARGET_SHARE else "not met"
    shown = f"{share:.0%}" if math.isfinite(share) else "not reached in every seed"
    lines.append(f"target: reach it within {TARGET_SHARE:.0%} of random search's {t_rand:.0f} train-seconds: "
                 f"{shown} -> {status}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--trials", type=int, default=8, help="trained trials per search")
    p.add_argument("--epochs", type=int, help="epochs of a complete trial (default: the demo spec's)")
    p.add_argument("--grace-period", type=int, help="first rung of asha / moasha (default: the spec's; eta: its 2)")
    p.add_argument("--image-size", type=int, default=40, help="40: two sizes fit +5%% (32, 40)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    p.add_argument("--paper", action="store_true", help="run the paper's Table 1 rows first in every search")
    p.add_argument("--data-root", default="data")
    p.add_argument("--verbose", action="store_true", help="print every trial")
    args = p.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or args.seeds < 1:
        p.error(f"unknown methods {unknown} (known: {', '.join(METHODS)})" if unknown else "--seeds must be >= 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from search.tuner import ray_session

    runs: list[Run] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        given = {"epochs": args.epochs, "grace_period": args.grace_period}
        demo = spec.load("demo", {"trials": args.trials, "image_size": args.image_size, "data_root": args.data_root,
                                  "paper": args.paper, **{k: v for k, v in given.items() if v is not None}}
                         ).replace(confirm=None)  # the search alone
        with ray_session(demo, verbose=False):  # one Ray for every search
            for seed in range(args.seeds):
                for method in methods:
                    s = demo.replace(seed=seed, name=f"{method}-{seed}", study_dir=str(Path(tmp) / f"{method}-{seed}"),
                                     **METHODS[method])
                    log = (lambda line, m=method: print(f"  [{m} {seed}] {line}")) if args.verbose else (lambda _: None)
                    r = measure(method, seed, run.run_search(s, log=log))
                    runs.append(r)
                    print(f"{method:12s} seed {seed}: hypervolume {r.hv:.4f}, {r.train_seconds:.0f} train-s, "
                          f"{r.trained} trained, {r.complete} COMPLETE, {r.wall_seconds:.0f} s", flush=True)
    print()
    print(f"demo task, {args.image_size} px, {demo.epochs} epochs (first rung {demo.grace_period}), "
          f"{args.trials} trained trials per search, "
          f"seeds 0-{args.seeds - 1}, paper rows {'in' if args.paper else 'out'}; "
          f"{time.perf_counter() - started:.0f} s in all")
    for line in table(runs) + [""] + verdict(runs):
        print(line)


if __name__ == "__main__":
    main()
