"""How much of a search's wall time is not training: the demo search, measured.

    python bench/search_overhead.py                 # the demo spec as shipped
    python bench/search_overhead.py --trials 8      # smaller

Runs the demo search (and its confirmation) into a temporary study and prints:

* the fraction of the run's wall time x concurrency (its trial slots) not spent in a
  trial's epochs (training + evaluation: the ``train_seconds`` of the search's trials and
  of the confirmation's runs, both counted): Ray start, scheduling, actor start-up, model
  build, FLOPs counting, data start-up, idle slots. Target: under 15%. Then the same per
  phase, each over its own span (first trial started to last one ended), which leaves out
  the pre-flight and the reports.
* what an over-budget trial costs: inside the search (ask to PRUNED, from the trial's
  start and completion times in the study) and in isolation on a fresh study (N
  over-budget configs queued, one ``suggest`` call prunes them all, timed from outside),
  against a trained trial of the same run.
  Target: under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

import spaces  # noqa: E402
from search import preflight, run, spec  # noqa: E402
from search import study as study_mod  # noqa: E402
from search.searcher import StudySearcher  # noqa: E402
from search.studydir import storage_for  # noqa: E402


def isolated_over_budget_seconds(s: spec.StudySpec, base, baseline_gflops: float, n: int, tmp: Path) -> float:
    """Seconds per over-budget trial: ask, replay the space, FLOPs (cached), attrs, tell PRUNED."""
    study = optuna.create_study(storage=storage_for(f"sqlite:///{tmp / 'over.db'}"), study_name="over",
                                directions=study_mod.DIRECTIONS, sampler=study_mod.make_sampler(s))
    label, params = spaces.paper_rows(s.space, base)[-1]  # the last row, made 3x3 after every stage
    params = {**params, **{f"scra_after_{i}": True for i in range(4)}, "scra_kernel": 3}
    for _ in range(n):
        study.enqueue_trial(params)
    searcher = StudySearcher(study, s.space, base, measure=preflight.measure_fn(), baseline_gflops=baseline_gflops,
                             budget=s.budget, epochs=s.epochs, n_trials=1, log=lambda line: None)
    # Over-budget proposals don't count: one suggest prunes the n queued (and any over-budget
    # draws after them) and returns the first config that fits, whose ask is timed too.
    start = time.perf_counter()
    searcher.suggest("x")
    pruned = len(study.get_trials(states=(TrialState.PRUNED,)))
    seconds = (time.perf_counter() - start) / pruned
    assert pruned >= n
    return seconds


def span_share(trials: list[FrozenTrial], slots: int) -> tuple[float, float, float]:
    """(span seconds, train seconds, share of span x slots outside the epochs) of trials that trained."""
    ran = [t for t in trials if t.user_attrs.get("epochs_run") and t.datetime_start and t.datetime_complete]
    if not ran:
        return 0.0, 0.0, float("nan")
    span = (max(t.datetime_complete for t in ran) - min(t.datetime_start for t in ran)).total_seconds()
    train = sum(t.user_attrs.get("train_seconds", 0.0) for t in ran)
    return span, train, 1 - train / (span * slots)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--data-root", default="data")
    p.add_argument("--over-budget-repeats", type=int, default=20)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        s = spec.load("demo", {"trials": args.trials, "epochs": args.epochs, "image_size": args.image_size,
                               "data_root": args.data_root, "study_dir": str(tmp / "study"), "name": "bench"})
        outcome = run.run_search(s, log=lambda line: print("  " + line))
        trials = outcome.study.get_trials()
        records = outcome.confirm.get_trials() if outcome.confirm is not None else []
        trained = [t for t in trials if t.user_attrs.get("epochs_run")]
        train = sum(t.user_attrs.get("train_seconds", 0.0) for t in trials + records)
        slots = outcome.wall_seconds * s.concurrency
        trial_walls = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trained]
        per_trial_extra = statistics.mean(w - t.user_attrs["train_seconds"] for w, t in zip(trial_walls, trained))
        states = {st.name: sum(t.state == st for t in trials)
                  for st in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        print(f"demo search: {len(trials)} trials {states}, {len(trained)} trained, "
              f"concurrency {s.concurrency}, {s.image_size} px, {s.epochs} epochs max")
        print(f"wall {outcome.wall_seconds:.1f} s x {s.concurrency} slots = {slots:.1f} slot-s; "
              f"in trial epochs (train + eval) {train:.1f} s, of {len(trained)} search trials and "
              f"{sum(1 for r in records if r.user_attrs.get('epochs_run'))} confirmation runs")
        print(f"outside training and evaluation: {1 - train / slots:.1%} of the slot time (target < 15%)")
        for name, group in (("search", trials), ("confirmation", records)):
            span, phase_train, share = span_share(group, s.concurrency)
            print(f"  {name}: {span:.1f} s from its first trial's start to its last one's end, {phase_train:.1f} s "
                  f"in epochs: {share:.1%} of its slot time outside them")
        print(f"  per trained trial, Ray trial wall minus its epochs: {per_trial_extra:.2f} s on average")

        # ask to PRUNED, as the study timed it (an over-budget trial is asked and told within one suggest)
        in_run = [(t.datetime_complete - t.datetime_start).total_seconds()
                  for t in trials if t.user_attrs.get("over_budget") and t.datetime_start and t.datetime_complete]
        base = s.base_config()
        baseline = outcome.study.user_attrs["baseline_gflops"]
        isolated = isolated_over_budget_seconds(s, base, baseline, args.over_budget_repeats, tmp)
        mean_trained = statistics.mean(trial_walls)
        if in_run:
            print(f"over-budget trial, in the search: {statistics.mean(in_run):.3f} s mean, {max(in_run):.3f} s max "
                  f"over {len(in_run)} (target < 1 s)")
        print(f"over-budget trial, isolated ({args.over_budget_repeats} queued): {isolated:.3f} s each = "
              f"{isolated / mean_trained:.4f} x a trained trial of this run ({mean_trained:.1f} s)")


if __name__ == "__main__":
    main()
