"""Export a trial's config for final training: the YAML that ``fgmodel.train`` runs unchanged.

    python -m search.export --study studies/foodx --out best.yaml             # max-acc
    python -m search.export --study studies/foodx --pick knee --out best.yaml
    python -m search.export --study studies/foodx --trial 17 --out best.yaml

The config is the one the trial trained with (its ``config`` user attr), set to
``data.eval_on = "test"``: final training uses all of train and reports test accuracy.
A pick (`search.pareto.pick`) rests on the confirmed means when `search.confirm` has
re-trained trials with new seeds, so the luckiest single run does not win; otherwise on
the search's own front of single runs, and the command warns that it does. A confirmation
that lacks runs (interrupted, or a resumed search moved the front) is refused unless
``--allow-partial``: its picks would be the best of whatever got confirmed. A config
that diverged on a seed is never picked. The YAML's first line says which numbers the
choice rests on.
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


def single_run_picks(front: Sequence[FrozenTrial]) -> dict[str, int]:
    """Pick -> trial number on the search's own front of single runs: the picks when nothing is confirmed."""
    return pareto.picks([pareto.Point(t.number, float(t.values[0]), float(t.values[1])) for t in front])


@dataclass(frozen=True)
class Choice:
    trial: FrozenTrial
    basis: str  # one line: which numbers the choice rests on (the YAML's header)
    single_runs: bool  # a pick on the search's single runs: nothing was confirmed


def choose(study: optuna.Study, trial: int | None = None, pick: str = "max-acc",
           confirm: optuna.Study | None = None, allow_partial: bool = False) -> Choice:
    """The trial to export and what it rests on; ValueError with a one-line reason when there is none.

    ``confirm``: the study's ``<name>:confirm`` study; with confirmed runs, picks are on
    their means, and only from a complete confirmation unless ``allow_partial``.
    """
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    confirmed = summarize(study, confirm)
    if trial is not None:
        found = trials.get(trial)
        if found is None:
            raise ValueError(f"trial {trial} does not exist (study {study.study_name!r} has {len(trials)} trials)")
        if found.state != TrialState.COMPLETE:
            reason = found.user_attrs.get(attrs.REASON) or found.user_attrs.get(attrs.ERROR) or ""
            reason = f" ({reason})" if reason else ""
            raise ValueError(f"trial {trial} is {found.state.name}{reason}, not COMPLETE: "
                             f"only fully trained trials export")
        return Choice(found, f"trial {trial} chosen by number: {_numbers(study, found, confirmed)}", False)
    if pick not in pareto.PICKS:
        raise ValueError(f"unknown pick {pick!r} (known: {', '.join(pareto.PICKS)})")
    if confirmed:
        if confirmed.missing and not allow_partial:
            raise ValueError(f"{confirmed.incomplete()}: finish it with search.confirm, or pass --allow-partial "
                             f"to pick from what it has")
        if not confirmed.picks:
            raise ValueError("no confirmed config is both within the FLOPs budget and stable (no diverged seed); "
                             "choose one with --trial N")
        chosen = trials[confirmed.picks[pick]]
        partial = f" ({confirmed.incomplete()})" if confirmed.missing else ""
        return Choice(chosen, f"picked by {pick} on confirmed means{partial}: {_numbers(study, chosen, confirmed)}",
                      False)
    if not any(t.state == TrialState.COMPLETE for t in trials.values()):
        raise ValueError(f"study {study.study_name!r} has no COMPLETE trials yet ({len(trials)} trials)")
    front = pareto.pareto_front(study)
    if not front:
        raise ValueError("no COMPLETE trial is within the FLOPs budget; choose one with --trial N")
    chosen = trials[single_run_picks(front)[pick]]
    return Choice(chosen, f"picked by {pick} on single runs (not confirmed): {_numbers(study, chosen, None)}", True)


def _numbers(study: optuna.Study, trial: FrozenTrial, confirmed: Confirmed | None) -> str:
    """``val top-1 45.20% +- 0.80 over 3 seeds, 0.0312 GFLOPs (trial 7)``: a confirmed mean, else the single run."""
    point = confirmed.points.get(trial.number) if confirmed else None
    if point is not None:
        level = confirmed.design.level
        h = point.top1.halfwidth(level)
        ci = "" if math.isnan(h) else f" +- {100 * h:.2f} ({level:.0%} t-interval)"
        unstable = f", diverged on seeds {', '.join(map(str, point.diverged))}" if point.diverged else ""
        return (f"mean val top-1 {point.top1.mean:.2%}{ci} over {point.top1.n} seeds{unstable}, "
                f"{point.gflops:.4g} GFLOPs (trial {trial.number})")
    top1 = float(trial.values[0])
    n = study.user_attrs.get(attrs.VAL_IMAGES)
    se = f" +- {100 * stats.binomial_se(top1, n):.2f} (binomial, {n} validation images)" if n else ""
    return f"val top-1 {top1:.2%}{se} from one run, {float(trial.values[1]):.4g} GFLOPs (trial {trial.number})"


def export(choice: Choice, out_path: str | Path) -> RunConfig:
    """Write the chosen trial's config, set to evaluate on the test set, to ``out_path`` under its basis."""
    user = choice.trial.user_attrs
    if attrs.CONFIG not in user:
        raise ValueError(f"trial {choice.trial.number} has no {attrs.CONFIG!r} user attr (not written by search.run?)")
    config = from_dict(user[attrs.CONFIG]).replace(**{"data.eval_on": "test"})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    dump_yaml(config, out_path, header=f"# {choice.basis}\n")
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="export this trial number")
    which.add_argument("--pick", choices=pareto.PICKS, default="max-acc",
                       help="choose from the Pareto front, of the confirmed means when there are any "
                            "(default: max-acc)")
    parser.add_argument("--out", default="best.yaml", help="output YAML (default: best.yaml)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="pick from a confirmation that lacks runs (interrupted, or the front moved since)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def export_chosen() -> None:
        study = load_study(args.study, args.storage)
        choice = choose(study, args.trial, args.pick, load_confirm_study(study, args.study, args.storage),
                        args.allow_partial)
        if choice.single_runs:
            print(f"warning: nothing is confirmed, so the pick rests on single runs (the luckiest run tends to "
                  f"win); confirm the front first: python -m search.confirm --study {args.study}", file=sys.stderr)
        export(choice, args.out)
        print(f"{choice.basis} -> {args.out}")
        print(f"final training (all of train, test eval): python -m fgmodel.train --config {args.out}")

    return run_main(export_chosen, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
