"""Export a trial's config for final training: the YAML that ``fgmodel.train`` runs unchanged.

    python -m search.export --study studies/foodx --out best.yaml             # max-acc
    python -m search.export --study studies/foodx --pick knee --out best.yaml
    python -m search.export --study studies/foodx --trial 17 --out best.yaml

The config is the trial's own ``config`` user attr (the one the trial trained with), with
``data.eval_on = "test"``: final training uses all of train and reports test accuracy.
Picks (`search.stats`) choose on a Pareto front:

- ``max-acc``: the front's most accurate trial (the most expensive point of the front).
- ``knee``: the point where extra GFLOPs stop buying accuracy, i.e. the front point
  farthest above the straight line joining the front's extremes (cheapest, most
  accurate), with GFLOPs and accuracy each scaled to [0, 1] over the front. With fewer
  than three points, or none above that line, it is the max-acc trial.

When `search.confirm` has re-trained trials with new seeds, the front is that of their
mean top-1 (within the budget), so the pick rests on means rather than on the luckiest
single run; otherwise it is the search's front (`search.pareto.pareto_front`) of single
runs, and the command warns once that it is. The YAML's first lines say which numbers
the pick rests on.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.cli import run_main
from fgmodel.config import RunConfig, dump_yaml, from_dict
from search import attrs, pareto, stats
from search.confirmed import Confirmed, summarize
from search.studydir import STUDY_ERRORS, add_study_arguments, load_confirm_study, load_study

PICKS = stats.PICKS


def _on_points(front: Sequence[FrozenTrial], pick: str) -> FrozenTrial:
    """`search.stats.pick` on the single runs of ``front`` (feasible trials, none dominated)."""
    points = [stats.Point(t.number, float(t.values[0]), float(t.values[1])) for t in front]
    return front[points.index(stats.pick(points, pick))]


def pick_knee(front: Sequence[FrozenTrial]) -> FrozenTrial:
    """`search.stats.pick_knee` on the trials' single runs."""
    return _on_points(front, "knee")


@dataclass(frozen=True)
class Choice:
    trial: FrozenTrial
    basis: str  # one line: which numbers the choice rests on (the YAML's header)
    single_runs: bool  # a pick on the search's single runs: nothing was confirmed


def choose(study: optuna.Study, trial: int | None = None, pick: str = "max-acc",
           confirm: optuna.Study | None = None) -> Choice:
    """The trial to export and what it rests on; ValueError with a one-line reason when there is none.

    ``confirm``: the study's ``<name>:confirm`` study; with confirmed runs, picks are on their means.
    """
    trials = study.get_trials(deepcopy=False)
    confirmed = summarize(study, confirm)
    if trial is not None:
        found = [t for t in trials if t.number == trial]
        if not found:
            raise ValueError(f"trial {trial} does not exist (study {study.study_name!r} has {len(trials)} trials)")
        if found[0].state != TrialState.COMPLETE:
            reason = found[0].user_attrs.get(attrs.REASON) or found[0].user_attrs.get(attrs.ERROR) or ""
            reason = f" ({reason})" if reason else ""
            raise ValueError(f"trial {trial} is {found[0].state.name}{reason}, not COMPLETE: "
                             f"only fully trained trials export")
        return Choice(found[0], f"trial {trial} chosen by number: {_numbers(study, found[0], confirmed)}", False)
    if pick not in PICKS:
        raise ValueError(f"unknown pick {pick!r} (known: {', '.join(PICKS)})")
    if confirmed and confirmed.picks:
        chosen = {t.number: t for t in trials}[confirmed.picks[pick]]
        return Choice(chosen, f"picked by {pick} on confirmed means: {_numbers(study, chosen, confirmed)}", False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise ValueError(f"study {study.study_name!r} has no COMPLETE trials yet ({len(trials)} trials)")
    front = pareto.pareto_front(study)
    if not front:
        raise ValueError("no COMPLETE trial is within the FLOPs budget; choose one with --trial N")
    chosen = _on_points(front, pick)
    return Choice(chosen, f"picked by {pick} on single runs (not confirmed): {_numbers(study, chosen, None)}", True)


def _numbers(study: optuna.Study, trial: FrozenTrial, confirmed: Confirmed | None) -> str:
    """``val top-1 45.20% +- 0.80 over 3 seeds, 0.0312 GFLOPs (trial 7)``: a confirmed mean, else the single run."""
    point = confirmed.points.get(trial.number) if confirmed else None
    if point is not None:
        se = "" if math.isnan(point.top1.se) else f" +- {100 * point.top1.se:.2f}"
        return (f"mean val top-1 {point.top1.mean:.2%}{se} over {point.top1.n} seeds, "
                f"{point.gflops:.4g} GFLOPs (trial {trial.number})")
    top1 = float(trial.values[0])
    n = study.user_attrs.get(attrs.VAL_IMAGES)
    se = f" +- {100 * stats.binomial_se(top1, n):.2f} (binomial, {n} validation images)" if n else ""
    return f"val top-1 {top1:.2%}{se} from one run, {float(trial.values[1]):.4g} GFLOPs (trial {trial.number})"


def trial_config(trial: FrozenTrial) -> RunConfig:
    if attrs.CONFIG not in trial.user_attrs:
        raise ValueError(f"trial {trial.number} has no {attrs.CONFIG!r} user attr (not written by search.run?)")
    return from_dict(trial.user_attrs[attrs.CONFIG])


def export(study: optuna.Study, out_path: str | Path, trial: int | None = None, pick: str = "max-acc",
           confirm: optuna.Study | None = None) -> RunConfig:
    """Write the chosen trial's config, set to evaluate on the test set, to ``out_path``."""
    choice = choose(study, trial, pick, confirm)
    config = trial_config(choice.trial).replace(**{"data.eval_on": "test"})
    write_config(config, out_path, choice.basis)
    return config


def write_config(config: RunConfig, out_path: str | Path, basis: str = "") -> None:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    dump_yaml(config, out_path, header=f"# {basis}\n" if basis else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="export this trial number")
    which.add_argument("--pick", choices=PICKS, default="max-acc",
                       help="choose from the Pareto front, of the confirmed means when there are any "
                            "(default: max-acc)")
    parser.add_argument("--out", default="best.yaml", help="output YAML (default: best.yaml)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def export_chosen() -> None:
        study = load_study(args.study, args.storage)
        choice = choose(study, args.trial, args.pick, load_confirm_study(study, args.study, args.storage))
        if choice.single_runs:
            print(f"warning: nothing is confirmed, so the pick rests on single runs (the luckiest run tends to "
                  f"win); confirm the front first: python -m search.confirm --study {args.study}", file=sys.stderr)
        write_config(trial_config(choice.trial).replace(**{"data.eval_on": "test"}), args.out, choice.basis)
        print(f"{choice.basis} -> {args.out}")
        print(f"final training (all of train, test eval): python -m fgmodel.train --config {args.out}")

    return run_main(export_chosen, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
