"""Confirm the front: train its best configs again with new seeds, so a pick rests on means, not on one run.

    python -m search.confirm --study studies/cub [--top 4] [--seeds 3] [--storage URL]

Every point of a search is one training run scored on one validation split; the single
best run is partly the luckiest one (the winner's curse). Confirmation trains, at full
fidelity (the study's epochs), on the same validation split:

- the ``top`` most accurate trials of the feasible Pareto front, and when the front has
  fewer, the next most accurate feasible COMPLETE trials (single-run top-1; ties go to
  fewer GFLOPs, then the earlier trial);
- the paper's baseline row (the reference of every paired difference), in whatever state
  the search left it (ASHA may have stopped it: confirmation trains it fully anyway);
- the best paper row: the most accurate feasible COMPLETE row other than the baseline.

each with ``seeds`` new seeds: the study's seed + 1, + 2, ... as ``optim.seed`` (initial
weights, data order, augmentation), while ``data.split_seed`` keeps the study's split.
The search's own run is not one of them: it was selected for being high, so counting it
would bias the mean upward.

The runs are Ray trials with the spec's resources and concurrency. Each is a trial of a
second study, ``<study>:confirm``, in the same storage (so optuna-dashboard shows it
beside the search), with the same objectives and user attrs ``confirms`` (the search
trial's number), ``seed``, ``config``, ``curve``, ``val_top1``, ``gflops`` and
``paper_row`` where it has one. Resume-safe: a (trial, seed) pair with a COMPLETE record,
or a FAIL from a non-finite loss (a fixed seed diverges again), is not run again; a
record left RUNNING by a killed process is failed ("driver died") and run again; Ctrl-C
fails the runs in flight ("interrupted") and keeps the finished ones.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import attrs, budget, dashboard, stats

SUFFIX = ":confirm"
BASELINE_ROW = "baseline"  # the paper_row label of Table 1's first row
BASELINE_ROLE = "baseline"  # the role of the trial every paired difference is taken to
DEFAULT_TOP, DEFAULT_SEEDS = 4, 3
NON_FINITE = "non_finite"  # the status attr of a run whose loss diverged: final, not run again


def confirm_study_name(study_name: str) -> str:
    return study_name + SUFFIX


# -- what to confirm (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    number: int  # the search trial it re-trains
    role: str  # "front", "next best", "baseline", "best paper row"
    gflops: float
    paper_row: str | None = None


def _top1(t: FrozenTrial) -> float:
    return float(t.values[0])


def _gflops(t: FrozenTrial) -> float:
    if t.state == TrialState.COMPLETE and t.values:
        return float(t.values[1])
    return float(t.user_attrs[attrs.GFLOPS])


def _by_accuracy(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return sorted(trials, key=lambda t: (-_top1(t), _gflops(t), t.number))


def choose_candidates(trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial], top: int) -> list[Candidate]:
    """The search trials to confirm, in that order: the top of the front (topped up), the baseline, the best paper row.

    ``trials``: all of the study's trials; ``front``: its feasible Pareto front
    (`search.budget.pareto_front`). A trial appears once, with its roles joined
    (``"front, baseline"``).
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE and budget.is_feasible(t)]
    chosen: dict[int, Candidate] = {}

    def add(t: FrozenTrial, role: str) -> None:
        if t.number in chosen:
            c = chosen[t.number]
            chosen[t.number] = Candidate(c.number, f"{c.role}, {role}", c.gflops, c.paper_row)
        else:
            chosen[t.number] = Candidate(t.number, role, _gflops(t), t.user_attrs.get(attrs.PAPER_ROW))

    for t in _by_accuracy(front)[:top]:
        add(t, "front")
    on_front = {t.number for t in front}
    for t in _by_accuracy([t for t in complete if t.number not in on_front])[: max(top - len(chosen), 0)]:
        add(t, "next best")
    baseline = _baseline_trial(trials)
    if baseline is not None:
        add(baseline, BASELINE_ROLE)
    rows = [t for t in complete if t.user_attrs.get(attrs.PAPER_ROW) not in (None, BASELINE_ROW)]
    if rows:
        add(_by_accuracy(rows)[0], "best paper row")
    return list(chosen.values())


def is_baseline(role: str) -> bool:
    return BASELINE_ROLE in role.split(", ")


def _baseline_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The baseline row: its COMPLETE run, else its latest run that has a config and a GFLOPs figure.

    A retry of a row cut short carries the row's label too, hence the choice among several.
    """
    rows = [t for t in trials if t.user_attrs.get(attrs.PAPER_ROW) == BASELINE_ROW and attrs.CONFIG in t.user_attrs
            and (t.state == TrialState.COMPLETE or attrs.GFLOPS in t.user_attrs)]
    if not rows:
        return None
    return max(rows, key=lambda t: (t.state == TrialState.COMPLETE, t.number))


def confirm_seeds(study_seed: int, n: int) -> list[int]:
    """``n`` seeds none of which is the search's own (``study_seed``)."""
    return [study_seed + 1 + i for i in range(n)]


@dataclass(frozen=True)
class Run:
    confirms: int
    seed: int


@dataclass
class Plan:
    todo: list[Run] = field(default_factory=list)  # to train now
    done: list[Run] = field(default_factory=list)  # already recorded, kept
    left_running: list[int] = field(default_factory=list)  # confirm-study trial numbers a dead process left RUNNING


def is_final(record: FrozenTrial) -> bool:
    """A record whose (trial, seed) needs no new run: COMPLETE, or FAIL from a non-finite loss."""
    return record.state == TrialState.COMPLETE or (
        record.state == TrialState.FAIL and record.user_attrs.get(attrs.STATUS) == NON_FINITE)


def plan(candidates: Sequence[Candidate], seeds: Sequence[int], records: Sequence[FrozenTrial]) -> Plan:
    """Which (trial, seed) runs remain, given the confirm study's ``records``.

    Candidates in their order, each with every seed in order; a pair is done when a
    record of it `is_final`. Records left RUNNING are listed for failing (one confirm
    process at a time writes the confirm study, so a RUNNING record is a dead process's).
    """
    final = {(r.user_attrs.get(attrs.CONFIRMS), r.user_attrs.get(attrs.SEED)) for r in records if is_final(r)}
    out = Plan(left_running=[r.number for r in records if r.state == TrialState.RUNNING])
    for c in candidates:
        for s in seeds:
            (out.done if (c.number, s) in final else out.todo).append(Run(c.number, s))
    return out


def run_config(trial: FrozenTrial, seed: int, split_seed: int) -> dict[str, Any]:
    """The search trial's own config (what export would write), with a new seed on the search's split."""
    config = {section: dict(values) for section, values in trial.user_attrs[attrs.CONFIG].items()}
    config["optim"]["seed"] = seed
    config["data"]["split_seed"] = split_seed
    return config


# -- reading the runs back (the report and the export) ---------------------------------------


@dataclass(frozen=True)
class ConfirmedPoint:
    number: int  # the search trial
    role: str
    paper_row: str | None
    gflops: float
    feasible: bool
    runs: dict[int, float]  # seed -> validation top-1 of its COMPLETE run
    top1: stats.Estimate  # mean and standard error over the seeds
    vs_baseline: stats.Estimate | None  # paired difference to the baseline over shared seeds


@dataclass(frozen=True)
class Confirmed:
    """What the confirm study says about the search's points, in numbers the report and the export share."""

    points: dict[int, ConfirmedPoint]  # by search trial number
    baseline: int | None
    front: list[int]  # on the front of the means (feasible only), cheapest first
    picks: dict[str, int]  # "max-acc" / "knee" -> search trial number, on the means' front
    verdict: str  # the plain sentence of `stats.verdict`

    @property
    def max_seeds(self) -> int:
        return max((p.top1.n for p in self.points.values()), default=0)


def confirmed_runs(records: Sequence[FrozenTrial]) -> dict[int, dict[int, float]]:
    """Search trial -> {seed: validation top-1} of the COMPLETE records (the first, should a pair have two)."""
    runs: dict[int, dict[int, float]] = {}
    for r in sorted(records, key=lambda r: r.number):
        if r.state == TrialState.COMPLETE and attrs.CONFIRMS in r.user_attrs:
            runs.setdefault(int(r.user_attrs[attrs.CONFIRMS]), {}).setdefault(int(r.user_attrs[attrs.SEED]),
                                                                                float(r.values[0]))
    return runs


def summarize(study: optuna.Study, confirm: optuna.Study | None) -> Confirmed | None:
    """The confirmed points of ``study`` (None when no confirmation run is COMPLETE yet)."""
    if confirm is None:
        return None
    records = confirm.get_trials(deepcopy=False)
    runs = confirmed_runs(records)
    if not runs:
        return None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    latest = {int(r.user_attrs[attrs.CONFIRMS]): r for r in sorted(records, key=lambda r: r.number)
              if attrs.CONFIRMS in r.user_attrs}
    baseline = next((n for n, r in latest.items() if is_baseline(str(r.user_attrs.get(attrs.ROLE, ""))) and n in runs),
                    None)
    points = {}
    for n, seeds in sorted(runs.items()):
        record, trial = latest[n], trials.get(n)
        points[n] = ConfirmedPoint(
            number=n, role=str(record.user_attrs.get(attrs.ROLE, "")), paper_row=record.user_attrs.get(attrs.PAPER_ROW),
            gflops=float(record.values[1]) if record.values else float(record.user_attrs[attrs.GFLOPS]),
            feasible=trial is None or budget.is_feasible(trial), runs=dict(sorted(seeds.items())),
            top1=stats.mean_se(list(seeds.values())),
            vs_baseline=stats.paired_difference(seeds, runs[baseline]) if baseline is not None else None,
        )
    means = [stats.Point(p.number, p.top1.mean, p.gflops, p.feasible) for p in points.values()]
    front = [p.number for p in stats.front(means)]
    picks = {how: stats.pick(means, how).number for how in stats.PICKS} if front else {}
    verdict = stats.verdict({n: p.runs for n, p in points.items() if p.feasible}, baseline)
    return Confirmed(points, baseline, front, picks, verdict)


# -- the confirm study -------------------------------------------------------------------------


def open_confirm_study(study: optuna.Study, storage: str | optuna.storages.BaseStorage,
                       create: bool = True) -> optuna.Study | None:
    """``<study>:confirm`` in ``storage``, the study's; created with the same objectives when missing and ``create``."""
    name = confirm_study_name(study.study_name)
    if name not in optuna.get_all_study_names(storage):
        if not create:
            return None
        confirm = optuna.create_study(study_name=name, storage=storage, directions=study.directions)
        dashboard.name_objectives(confirm)
        confirm.set_user_attr(attrs.CONFIRMS_STUDY, study.study_name)
        return confirm
    return optuna.load_study(study_name=name, storage=storage)


def load_confirm_study(study: optuna.Study, study_dir: str | Path, storage: str | None = None) -> optuna.Study | None:
    """The confirm study of ``study`` (loaded by `search.studydir.load_study` from the same arguments), or None."""
    from search.studydir import read_pointer, storage_for

    return open_confirm_study(study, storage_for(storage or read_pointer(study_dir).storage), create=False)


def fail_left_running(confirm: optuna.Study, numbers: Sequence[int], reason: str = attrs.DRIVER_DIED) -> None:
    from search.study import reopen

    for frozen in confirm.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number in numbers:
            reopen(confirm, frozen).set_user_attr(attrs.REASON, reason)
            confirm.tell(frozen.number, state=TrialState.FAIL)


@dataclass
class _Live:
    trial: optuna.Trial
    run: Run
    curve: list[float] = field(default_factory=list)
    error: str | None = None
    non_finite: str | None = None


class Recorder:
    """Keeps the confirm study in step with Ray: a RUNNING record per started run, its curve, then COMPLETE or FAIL.

    Driven by Ray Tune's callback hooks in the driver process (see `_tune`); plain methods,
    so tests drive it without Ray.
    """

    def __init__(self, confirm: optuna.Study, candidates: Sequence[Candidate],
                 configs: Mapping[tuple[int, int], dict[str, Any]], epochs: int,
                 log: Callable[[str], None] = print) -> None:
        self.confirm = confirm
        self.candidates = {c.number: c for c in candidates}
        self.configs = configs
        self.epochs = epochs
        self.log = log
        self.live: dict[str, _Live] = {}

    def start(self, key: str, run: Run) -> None:
        c = self.candidates[run.confirms]
        trial = self.confirm.ask()
        values: dict[str, Any] = {
            attrs.CONFIRMS: run.confirms, attrs.SEED: run.seed, attrs.ROLE: c.role, attrs.GFLOPS: c.gflops,
            attrs.CONFIG: self.configs[(run.confirms, run.seed)], attrs.CURVE: [], attrs.EPOCHS_RUN: 0,
        }
        if c.paper_row:
            values[attrs.PAPER_ROW] = c.paper_row
        for k, v in values.items():
            trial.set_user_attr(k, v)
        self.live[key] = _Live(trial, run)

    def result(self, key: str, result: Mapping[str, Any]) -> None:
        live = self.live.get(key)
        if live is None:
            return
        if "error" in result:
            live.error = str(result["error"])
        elif result.get("status") == NON_FINITE:
            live.non_finite = str(result.get("reason") or "non-finite loss")
        elif "val_top1" in result:
            epoch = int(result.get("epoch", len(live.curve) + 1))
            if epoch == 1 and live.curve:  # Ray re-ran it (retries): the failed attempt's curve is not this run's
                live.curve, live.error, live.non_finite = [], None, None
            live.curve[epoch - 1:] = [float(result["val_top1"])]
            for k, v in {attrs.CURVE: list(live.curve), attrs.EPOCHS_RUN: len(live.curve),
                         attrs.TRAIN_SECONDS: float(result.get("train_seconds", 0.0)),
                         attrs.NODE_ID: str(result.get("node_id", ""))}.items():
                live.trial.set_user_attr(k, v)
            dashboard.show_curve(live.trial, live.curve, self.epochs)

    def complete(self, key: str, errored: bool = False) -> None:
        live = self.live.pop(key, None)
        if live is None:
            return
        if errored or live.error:
            error = live.error or "the process died (see the Ray logs)"
            self._tell(live, TrialState.FAIL, reason="raised", error=error)
        elif live.non_finite:
            self._tell(live, TrialState.FAIL, reason=live.non_finite, status=NON_FINITE)
        elif len(live.curve) >= self.epochs:
            top1 = live.curve[-1]
            self._tell(live, TrialState.COMPLETE, [top1, self.candidates[live.run.confirms].gflops],
                       reason="completed", val_top1=top1)
        else:
            self._tell(live, TrialState.FAIL, reason=f"stopped after {len(live.curve)} of {self.epochs} epochs")

    def fail_live(self, reason: str) -> None:
        for key in list(self.live):
            self._tell(self.live.pop(key), TrialState.FAIL, reason=reason)

    def _tell(self, live: _Live, state: TrialState, values: list[float] | None = None, **extra: Any) -> None:
        for k, v in extra.items():
            live.trial.set_user_attr(k, v)
        self.confirm.tell(live.trial, values, state=state)
        what = f"val_top1 {values[0]:.4f}" if values else extra["reason"]
        self.log(f"confirm trial {live.run.confirms:3d} seed {live.run.seed}: {state.name:8s} {what}")


# -- Ray ---------------------------------------------------------------------------------------


def _key(run: Run) -> str:
    return f"{run.confirms}:{run.seed}"


def _run_of(trial: Any) -> Run:
    confirms, seed = trial.config["run"].split(":")
    return Run(int(confirms), int(seed))


def _trial_name(trial: Any) -> str:
    run = _run_of(trial)
    return f"confirm_{run.confirms}_seed{run.seed}"


def confirm_trial(config: dict[str, Any], *, configs: dict[str, dict[str, Any]]) -> None:
    """Ray function trainable: the search's fit-and-report (`search.trainable.train_config`) on one run's config."""
    from fgmodel.config import from_dict
    from search.trainable import train_config

    train_config(lambda: from_dict(configs[config["run"]]))


def _tune(spec: Any, runs: Sequence[Run], recorder: Recorder, study_dir: Path,
          trainable: Callable[..., Any] | None, verbose: bool) -> None:
    """Train ``runs`` as Ray trials: a fixed grid, no searcher, no scheduler (every run goes all epochs)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TB per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # the error / non-finite reports carry no val_top1
    from ray import tune

    from search.tuner import start_ray, stop_ray

    class RecorderCallback(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.start(trial.trial_id, _run_of(trial))

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            recorder.result(trial.trial_id, result)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.complete(trial.trial_id)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.complete(trial.trial_id, errored=True)

    owns_ray = start_ray(spec, verbose)  # quiet unless verbose, resources checked
    try:
        configs = {_key(r): recorder.configs[(r.confirms, r.seed)] for r in runs}
        fn = tune.with_parameters(trainable or confirm_trial, configs=configs)
        fn = tune.with_resources(fn, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
        tuner = tune.Tuner(
            fn,
            param_space={"run": tune.grid_search([_key(r) for r in runs])},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=spec.concurrency, reuse_actors=True,
                trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=f"{spec.study_name}-confirm-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(study_dir / "ray"), verbose=1 if verbose else 0, callbacks=[RecorderCallback()],
                failure_config=tune.FailureConfig(max_failures=spec.retries),
            ),
        )
        tuner.fit()
    finally:
        stop_ray(owns_ray)


# -- the driver and the CLI ------------------------------------------------------------------


@dataclass
class Outcome:
    confirm: optuna.Study
    candidates: list[Candidate]
    plan: Plan
    interrupted: bool
    wall_seconds: float


def settings(block: Mapping[str, int] | None, top: int | None = None, seeds: int | None = None) -> tuple[int, int]:
    """(top, seeds): the arguments, else the spec's ``confirm:`` block, else the defaults."""
    block = block or {}
    top = top if top is not None else int(block.get("top", DEFAULT_TOP))
    seeds = seeds if seeds is not None else int(block.get("seeds", DEFAULT_SEEDS))
    if top < 1 or seeds < 1:
        raise ValueError(f"confirm needs --top >= 1 and --seeds >= 1, got {top} and {seeds}")
    return top, seeds


def stored_spec(study: optuna.Study) -> Any:
    """The `search.spec.StudySpec` the study was created with (its ``spec`` attr)."""
    from search import spec as spec_mod

    if attrs.SPEC not in study.user_attrs:
        raise ValueError(f"study {study.study_name!r} has no {attrs.SPEC!r} attr (not written by search.run?)")
    return spec_mod.from_dict(study.user_attrs[attrs.SPEC])


def run_confirm(study: optuna.Study, storage: str, study_dir: str | Path, *, spec: Any = None,
                top: int | None = None, seeds: int | None = None, trainable: Callable[..., Any] | None = None,
                verbose: bool = False, log: Callable[[str], None] = print) -> Outcome:
    """Confirm ``study``'s front (see the module doc).

    ``storage``: the study's storage URL. ``spec``: the resources, concurrency, epochs and
    seed to use (default: the spec the study was created with); ``top`` and ``seeds``
    default to its ``confirm:`` block. ``trainable`` replaces `confirm_trial` (tests).
    """
    from search.studydir import storage_for

    started = time.perf_counter()
    spec = spec if spec is not None else stored_spec(study)
    top, seeds = settings(spec.confirm, top, seeds)
    trials = study.get_trials(deepcopy=False)
    candidates = choose_candidates(trials, budget.pareto_front(study), top)
    if not candidates:
        raise ValueError(f"study {study.study_name!r} has no COMPLETE trial within the FLOPs budget to confirm")
    by_number = {t.number: t for t in trials}
    seed_list = confirm_seeds(spec.seed, seeds)
    configs = {(c.number, s): run_config(by_number[c.number], s, spec.seed) for c in candidates for s in seed_list}

    confirm = open_confirm_study(study, storage_for(storage))
    todo = plan(candidates, seed_list, confirm.get_trials(deepcopy=False))
    if todo.left_running:
        fail_left_running(confirm, todo.left_running)
        log(f"confirm: runs {', '.join(map(str, todo.left_running))} of {confirm.study_name!r} were left RUNNING "
            f"by a dead process: FAIL, run again")
    roles = ", ".join(f"{c.number} ({c.role})" for c in candidates)
    log(f"confirm: trials {roles} x seeds {', '.join(map(str, seed_list))}: {len(todo.todo)} runs to train, "
        f"{len(todo.done)} recorded; {spec.epochs} epochs each, {spec.concurrency} at a time")
    interrupted = False
    if todo.todo:
        recorder = Recorder(confirm, candidates, configs, spec.epochs, log)
        try:
            _tune(spec, todo.todo, recorder, Path(study_dir), trainable, verbose)
        except KeyboardInterrupt:
            interrupted = True
        # Tune's own Ctrl-C handling returns from fit() with runs unfinished: they are still live here
        interrupted = interrupted or bool(recorder.live)
        recorder.fail_live(attrs.INTERRUPTED)
    return Outcome(confirm, candidates, todo, interrupted, time.perf_counter() - started)


RESOURCE_FLAGS = ("concurrency", "cpus_per_trial", "gpus_per_trial", "address")


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from fgmodel.cli import run_main
    from search.report import write_reports
    from search.studydir import STUDY_ERRORS, add_study_arguments, load_study, read_pointer

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m search.confirm", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--top", type=int, help=f"front trials to confirm (default: the spec's confirm: block, "
                                                f"else {DEFAULT_TOP})")
    parser.add_argument("--seeds", type=int, help=f"new seeds per trial (default: the spec's, else {DEFAULT_SEEDS})")
    parser.add_argument("--concurrency", type=int, help="runs at once (default: the spec's)")
    parser.add_argument("--cpus-per-trial", type=float, help="(default: the spec's)")
    parser.add_argument("--gpus-per-trial", type=float, help="(default: the spec's)")
    parser.add_argument("--address", help="an existing Ray cluster (default: the spec's)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own output and the trials' logs")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def run() -> int:
        study = load_study(args.study, args.storage)
        spec = stored_spec(study)
        spec = spec.replace(**{k: getattr(args, k) for k in RESOURCE_FLAGS if getattr(args, k) is not None})
        outcome = run_confirm(study, args.storage or read_pointer(args.study).storage, args.study, spec=spec,
                              top=args.top, seeds=args.seeds, verbose=args.verbose)
        paths = write_reports(study, args.study, outcome.confirm)
        print("")
        print(paths.table)
        print(f"report: {paths.html}")
        if outcome.interrupted:
            again = shlex.join(["python", "-m", "search.confirm", *argv])
            print(f"interrupted: the finished runs are kept; run again to train the rest:\n  {again}",
                  file=sys.stderr)
            return 130
        print(f"confirmed in {outcome.wall_seconds:.0f} s; export: python -m search.export "
              f"--study {shlex.quote(args.study)} --pick knee --out best.yaml")
        return 0

    return run_main(run, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
