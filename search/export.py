"""Export a trial's config for final training: the YAML that ``fgmodel.train`` runs unchanged.

    python -m search.export --study studies/foodx --out best.yaml             # max-acc
    python -m search.export --study studies/foodx --pick knee --out best.yaml
    python -m search.export --study studies/foodx --trial 17 --out best.yaml

The config is the trial's own ``config`` user attr (the one the trial trained with), with
``data.eval_on = "test"``: final training uses all of train and reports test accuracy.
Picks choose among the feasible Pareto front (`search.budget.pareto_front`):

- ``max-acc``: the front's most accurate trial (the most expensive point of the front).
- ``knee``: the point where extra GFLOPs stop buying accuracy, i.e. the front point
  farthest above the straight line joining the front's extremes (cheapest, most
  accurate), with GFLOPs and accuracy each scaled to [0, 1] over the front. With fewer
  than three points, or none above that line, it is the max-acc trial.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.cli import run_main
from fgmodel.config import RunConfig, dump_yaml, from_dict
from search import attrs, budget
from search.studydir import STUDY_ERRORS, add_study_arguments, load_study

PICKS = ("max-acc", "knee")


def pick_max_acc(front: Sequence[FrozenTrial]) -> FrozenTrial:
    """Highest accuracy; ties go to fewer GFLOPs, then the earlier trial."""
    return max(front, key=lambda t: (t.values[0], -t.values[1], -t.number))


def pick_knee(front: Sequence[FrozenTrial]) -> FrozenTrial:
    if len(front) < 3:
        return pick_max_acc(front)
    gflops = [t.values[1] for t in front]
    acc = [t.values[0] for t in front]
    g_span, a_span = max(gflops) - min(gflops), max(acc) - min(acc)
    if g_span == 0 or a_span == 0:
        return pick_max_acc(front)
    points = [((g - min(gflops)) / g_span, (a - min(acc)) / a_span) for g, a in zip(gflops, acc)]
    cheapest = min(range(len(front)), key=lambda i: (gflops[i], -acc[i]))
    best = front.index(pick_max_acc(front))
    (x0, y0), (x1, y1) = points[cheapest], points[best]
    # Cross product: > 0 for points above the line from the cheapest to the best point.
    above = [(x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) for x, y in points]
    knee = max(range(len(front)), key=lambda i: (above[i], -front[i].number))
    return front[knee] if above[knee] > 1e-12 else front[best]


def choose(study: optuna.Study, trial: int | None = None, pick: str = "max-acc") -> FrozenTrial:
    """The trial to export; ValueError with a one-line reason when there is none."""
    trials = study.get_trials(deepcopy=False)
    if trial is not None:
        found = [t for t in trials if t.number == trial]
        if not found:
            raise ValueError(f"trial {trial} does not exist (study {study.study_name!r} has {len(trials)} trials)")
        if found[0].state != TrialState.COMPLETE:
            reason = found[0].user_attrs.get(attrs.REASON) or found[0].user_attrs.get(attrs.ERROR) or ""
            reason = f" ({reason})" if reason else ""
            raise ValueError(f"trial {trial} is {found[0].state.name}{reason}, not COMPLETE: "
                             f"only fully trained trials export")
        return found[0]
    if pick not in PICKS:
        raise ValueError(f"unknown pick {pick!r} (known: {', '.join(PICKS)})")
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise ValueError(f"study {study.study_name!r} has no COMPLETE trials yet ({len(trials)} trials)")
    front = budget.pareto_front(study)
    if not front:
        raise ValueError("no COMPLETE trial is within the FLOPs budget; choose one with --trial N")
    return pick_max_acc(front) if pick == "max-acc" else pick_knee(front)


def trial_config(trial: FrozenTrial) -> RunConfig:
    if attrs.CONFIG not in trial.user_attrs:
        raise ValueError(f"trial {trial.number} has no {attrs.CONFIG!r} user attr (not written by search.run?)")
    return from_dict(trial.user_attrs[attrs.CONFIG])


def export(
    study: optuna.Study, out_path: str | Path, trial: int | None = None, pick: str = "max-acc"
) -> RunConfig:
    """Write the chosen trial's config, set to evaluate on the test set, to ``out_path``."""
    config = trial_config(choose(study, trial, pick)).replace(**{"data.eval_on": "test"})
    write_config(config, out_path)
    return config


def write_config(config: RunConfig, out_path: str | Path) -> None:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    dump_yaml(config, out_path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="export this trial number")
    which.add_argument("--pick", choices=PICKS, default="max-acc",
                       help="choose from the Pareto front (default: max-acc)")
    parser.add_argument("--out", default="best.yaml", help="output YAML (default: best.yaml)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def export_chosen() -> None:
        chosen = choose(load_study(args.study, args.storage), args.trial, args.pick)
        write_config(trial_config(chosen).replace(**{"data.eval_on": "test"}), args.out)
        how = f"trial {chosen.number}" if args.trial is not None else f"{args.pick} pick: trial {chosen.number}"
        print(f"{how}, val top-1 {chosen.values[0]:.2%}, {chosen.values[1]:.3f} GFLOPs -> {args.out}")
        print(f"final training (all of train, test eval): python -m fgmodel.train --config {args.out}")

    return run_main(export_chosen, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
