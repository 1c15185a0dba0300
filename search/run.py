"""The search: ``python -m search.run --task foodx`` (also cub, cub_aircraft, demo).

Reads ``studies/<task>.yaml`` (flags override any field), runs the pre-flight checks
(`search.preflight`), creates or resumes the Optuna study (`search.study`; SQLite under
``studies/<name>/`` unless ``--storage``), then lets Ray Tune run the trials that
`search.searcher.StudySearcher` proposes (`search.tuner`). At the end it writes the
reports and prints the front.

This module is the command line and the console summary; the search itself is
`search.driver.run_search` (checks first, faults and resume are described there).
Ctrl-C prints the command that resumes. ``--plan`` prints what the search would train
(`search.plan`) and stops: no data, Ray or GPU needed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.cli import run_main
from fgmodel.config import ConfigError
from search import attrs, budget, preflight
from search import plan as plan_mod
from search import spec as spec_mod
from search.driver import Interrupted, Outcome, run_search
from search.spec import AUTO, StudySpec
from search.studydir import STUDY_ERRORS
from search.trials import counted, cut_short


def finish(outcome: Outcome, spec: StudySpec, resume_command: str, log: Callable[[str], None] = print) -> None:
    """Write the reports and print the front, the paths and what to run next."""
    from search.report import write_reports

    trials = outcome.study.get_trials(deepcopy=False)
    paths = write_reports(outcome.study, outcome.study_dir, outcome.confirm)
    log("")
    log(paths.table)
    log("")
    log(f"trials: {trial_counts(trials)}; {outcome.wall_seconds:.0f} s")
    log(paths.ledger)
    if outcome.searcher is not None and outcome.searcher.exhausted:
        log(outcome.searcher.exhausted)
    versus = best_versus_paper(trials)
    if versus:
        log(versus)
    log(f"report: {paths.html}")
    log(f"        {paths.trials_csv}")
    log(f"        {paths.pareto_csv}")
    if outcome.interrupted:
        log(f"interrupted: resume with\n  {resume_command}")
    else:
        study_dir = shlex.quote(str(outcome.study_dir))
        if outcome.confirm is None:
            log(f"confirm: python -m search.confirm --study {study_dir} (re-train the front with new seeds)")
        log(f"export: python -m search.export --study {study_dir} --pick knee --out best.yaml")


def trial_counts(trials: Sequence[FrozenTrial]) -> str:
    """``18 trained (6 COMPLETE, 11 stopped early, 1 FAIL); not trained: 7 over the FLOPs budget``."""
    trained = [t for t in trials if counted(t) and t.state.is_finished()]
    kinds = {"COMPLETE": TrialState.COMPLETE, "stopped early": TrialState.PRUNED, "FAIL": TrialState.FAIL}
    parts = [f"{n} {name}" for name, state in kinds.items() if (n := sum(t.state == state for t in trained))]
    untrained = {
        "over the FLOPs budget": sum(1 for t in trials if t.user_attrs.get(attrs.OVER_BUDGET)),
        "config errors": sum(1 for t in trials if t.user_attrs.get(attrs.REASON) == attrs.CONFIG_ERROR),
        "cut short (run again on resume)": sum(1 for t in trials if cut_short(t)),
    }
    line = f"{len(trained)} trained ({', '.join(parts) or 'none finished'})"
    rest = [f"{n} {name}" for name, n in untrained.items() if n]
    return line + (f"; not trained: {', '.join(rest)}" if rest else "")


def best_versus_paper(trials: Sequence[FrozenTrial]) -> str | None:
    """How the most accurate within-budget COMPLETE trial compares with the best COMPLETE paper row."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and budget.is_feasible(t)]
    rows = [t for t in complete if attrs.PAPER_ROW in t.user_attrs]
    if not complete:
        return None
    best = max(complete, key=lambda t: (t.values[0], -t.values[1], -t.number))
    line = f"best trial: #{best.number} val top-1 {best.values[0]:.4f} at {best.values[1]:.4g} GFLOPs"
    if not rows:
        return line + " (no paper row COMPLETE to compare with)"
    row = max(rows, key=lambda t: (t.values[0], -t.values[1], -t.number))
    if row.number == best.number:
        return line + f", the paper row {row.user_attrs[attrs.PAPER_ROW]!r}"
    gap = 100 * (best.values[0] - row.values[0])
    cost = 100 * (best.values[1] / row.values[1] - 1)
    return (line + f"; best paper row {row.user_attrs[attrs.PAPER_ROW]!r} (#{row.number}) {row.values[0]:.4f} at "
            f"{row.values[1]:.4g} GFLOPs: {gap:+.2f} pp top-1, {cost:+.1f}% GFLOPs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m search.run",
        description="Multi-objective search (val top-1 up, GFLOPs down) under a FLOPs budget, "
                    "with Ray Tune and Optuna.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", help="a study spec in studies/: cub, cub_aircraft, foodx, demo")
    src.add_argument("--spec", help="a study spec YAML file")
    p.add_argument("--trials", type=int, help="trained trials (over-budget proposals are recorded, not counted)")
    p.add_argument("--epochs", type=int, help="the schedule's epochs (optim.epochs of every trial)")
    p.add_argument("--dead-lr-fraction", type=fraction_or_off, metavar="F|off",
                   help="a trial is complete once the lr stays <= F of its first value (off: every epoch)")
    p.add_argument("--gpus-per-trial", type=float, help="at most 1; fractions share a GPU, e.g. 0.5")
    p.add_argument("--cpus-per-trial", type=number_or_auto, help="a number, or auto: a node's cores / its trials")
    p.add_argument("--concurrency", type=count_or_auto, help="trials running at once, or auto: the cluster's GPUs "
                                                             "/ gpus_per_trial")
    p.add_argument("--data-root", help="the dataset's folder (or its parent)")
    p.add_argument("--backbone", help="a timm ConvNeXt(-V2) name, e.g. convnextv2_base; alone, it also takes "
                                      "timm's default pretrained weights for it")
    p.add_argument("--pretrained", help="weights: a timm tag (convnextv2_base.fcmae_ft_in22k_in1k), none, or a "
                                        ".safetensors/.pth file")
    p.add_argument("--image-size", type=int)
    p.add_argument("--budget", type=float, help="allowed GFLOPs over the baseline, 0.05 = +5%%")
    p.add_argument("--storage", help="an Optuna RDB URL, e.g. postgresql+psycopg://user:pw@host/db")
    p.add_argument("--address", help="an existing Ray cluster, e.g. auto or HEAD:6379")
    p.add_argument("--name", help="the study's name and folder (default: the task)")
    p.add_argument("--study-dir", help="where the outputs go (default: studies/<name>)")
    p.add_argument("--seed", type=int)
    p.add_argument("--sampler", help="tpe, random or gp (Optuna's GPSampler)")
    p.add_argument("--scheduler", help="moasha (val top-1 and GFLOPs), asha (val top-1) or fifo (no early stop)")
    p.add_argument("--grace-period", type=int, help="moasha / asha: epochs before the first cut")
    p.add_argument("--reduction-factor", type=int, help="moasha / asha: keep the top 1/N at each rung")
    p.add_argument("--confirm-top", type=int, metavar="K",
                   help="after the search, re-train the front's top K with new seeds (sets confirm.top)")
    p.add_argument("--confirm-seeds", type=int, metavar="N", help="seeds per confirmed trial (sets confirm.seeds)")
    p.add_argument("--confirm-race", action=argparse.BooleanOptionalAction,
                   help="confirm in rounds, at most N seeds; dominated or futile trials stop (sets confirm.race)")
    p.add_argument("--no-confirm", action="store_true", help="no confirmation after the search (confirm: null)")
    p.add_argument("--plan", action="store_true", help="print what the search would train, per phase, and stop "
                                                       "(no data, Ray or GPU needed)")
    p.add_argument("--epoch-seconds", type=float, metavar="S",
                   help="one 224-px epoch of one trial, in seconds: the plan adds GPU-hours and wall time")
    p.add_argument("--resume", action="store_true", help="continue the study after a crash or Ctrl-C")
    p.add_argument("--verbose", action="store_true", help="show Ray's own output and the trials' logs")
    return p


OVERRIDES = ("trials", "epochs", "gpus_per_trial", "cpus_per_trial", "concurrency", "data_root", "backbone",
             "pretrained", "image_size", "budget", "storage", "address", "name", "study_dir", "seed", "sampler",
             "scheduler", "grace_period", "reduction_factor")
OFF = "off"


def count_or_auto(text: str) -> int | str:
    return text if text == AUTO else int(text)


def number_or_auto(text: str) -> float | str:
    return text if text == AUTO else float(text)


def fraction_or_off(text: str) -> float | str:
    return text if text == OFF else float(text)


def show_plan(spec: StudySpec, epoch_seconds: float | None = None) -> str:
    """What ``spec`` would train (`search.plan.describe`), from the spec alone: no data, Ray or GPU.

    ``concurrency: auto`` counts this machine's GPUs (or cores); with none of the GPUs a
    trial needs, the wall time waits for ``--concurrency``.
    """
    import spaces
    from search.confirmed import DEFAULT_SEEDS, DEFAULT_TOP

    base = spec.base_config()
    rows = len(spaces.paper_rows(spec.space, base)) if spec.paper else 0
    plan = plan_mod.plan_for(spec, trained=spec.trained_epochs(base), paper_rows=rows, slots=local_slots(spec),
                             top=DEFAULT_TOP, seeds=DEFAULT_SEEDS)
    return plan_mod.describe(plan, epoch_seconds)


def local_slots(spec: StudySpec) -> int | None:
    """The trials this machine runs at once under ``spec`` (None: it has no GPU and a trial needs one)."""
    if spec.concurrency != AUTO:
        return int(spec.concurrency)
    import os

    import torch

    from search.tuner import auto_resources

    gpus = torch.cuda.device_count()
    if spec.gpus_per_trial > 0 and not gpus:
        return None
    here = {"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}
    return auto_resources([here], spec.concurrency, spec.cpus_per_trial, spec.gpus_per_trial)[0]


def resume_command(argv: Sequence[str]) -> str:
    """The command line that continues this search: the same flags plus ``--resume``."""
    args = [a for a in argv if a != "--resume"]
    return shlex.join(["python", "-m", "search.run", *args, "--resume"])


def load_spec(args: argparse.Namespace, log: Callable[[str], None] = print) -> StudySpec:
    """The spec of ``--task`` (a name) or ``--spec`` (a file, read as given), with the flags applied.

    ``--backbone X`` without ``--pretrained`` swaps the spec's weights for timm's default
    pretrained tag of X (a spec's tag or file is for its own backbone); a spec without
    weights (``pretrained: none``) stays without, and the demo's own (``pretrained: demo``,
    made for any backbone) stay. A ``--pretrained`` file is made absolute,
    since the trials run in other working directories. ``--confirm-top`` / ``--confirm-seeds`` /
    ``--[no-]confirm-race`` set those keys of the spec's ``confirm:`` block (a spec without one gets one);
    ``--no-confirm`` drops the block.
    """
    overrides = {k: getattr(args, k) for k in OVERRIDES}
    if args.dead_lr_fraction not in (None, OFF):
        overrides["dead_lr_fraction"] = args.dead_lr_fraction
    if args.pretrained and args.pretrained != "none" and Path(args.pretrained).expanduser().exists():
        overrides["pretrained"] = str(Path(args.pretrained).expanduser().resolve())
    confirm = {k: v for k, v in (("top", args.confirm_top), ("seeds", args.confirm_seeds),
                                 ("race", args.confirm_race)) if v is not None}
    if args.no_confirm and confirm:
        raise ConfigError("confirm", "--no-confirm contradicts --confirm-top / --confirm-seeds / --confirm-race")
    spec = spec_mod.load(args.task if args.task else Path(args.spec), overrides)
    if args.no_confirm or confirm:  # the flags set keys of the spec's block; the others stay
        spec = spec.replace(confirm=None if args.no_confirm else {**(spec.confirm or {}), **confirm})
    if args.dead_lr_fraction == OFF:
        spec = spec.replace(dead_lr_fraction=None)
    if args.backbone and args.pretrained is None and spec.pretrained not in ("none", "demo"):
        tag = preflight.default_pretrained(args.backbone)
        if tag != spec.pretrained:
            log(f"pretrained: {tag} (timm's default for --backbone {args.backbone}; --pretrained picks others)")
            spec = spec.replace(pretrained=tag)
    return spec


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def search() -> int:
        again = resume_command(argv)
        spec = load_spec(args)
        if args.plan:
            print(show_plan(spec, args.epoch_seconds))
            return 0
        try:
            outcome = run_search(spec, resume=args.resume, verbose=args.verbose, epoch_seconds=args.epoch_seconds)
        except Interrupted as exc:
            if not exc.study_created or args.resume:
                again = shlex.join(["python", "-m", "search.run", *argv])
            print(f"interrupted before the trials started; run again with: {again}", file=sys.stderr)
            return 130
        finish(outcome, spec, again)
        return 130 if outcome.interrupted else 0

    return run_main(search, errors=STUDY_ERRORS)  # ConnectionError (an unreachable Ray) is an OSError


if __name__ == "__main__":
    sys.exit(main())
