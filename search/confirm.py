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

import logging
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import budget

SUFFIX = ":confirm"
BASELINE_ROW = "baseline"  # the paper_row label of Table 1's first row
DEFAULT_TOP, DEFAULT_SEEDS = 4, 3
DRIVER_DIED, INTERRUPTED = "driver died", "interrupted"
NON_FINITE = "non_finite"  # the status attr of a run whose loss diverged: final, not run again

# Trial user attrs of a confirmation run.
CONFIRMS, SEED, ROLE = "confirms", "seed", "role"


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
    return float(t.values[1]) if t.state == TrialState.COMPLETE and t.values else float(t.user_attrs["gflops"])


def _by_accuracy(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return sorted(trials, key=lambda t: (-_top1(t), _gflops(t), t.number))


def choose_candidates(trials: Sequence[FrozenTrial], front: Sequence[FrozenTrial], top: int) -> list[Candidate]:
    """The search trials to confirm, in that order: the top of the front (topped up), the baseline, the best paper row.

    ``trials``: all of the study's trials; ``front``: its feasible Pareto front
    (`search.budget.pareto_front`). A trial appears once, under its first role.
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE and budget.is_feasible(t)]
    chosen: list[Candidate] = []
    seen: set[int] = set()

    def add(t: FrozenTrial, role: str) -> None:
        if t.number not in seen:
            seen.add(t.number)
            chosen.append(Candidate(t.number, role, _gflops(t), t.user_attrs.get("paper_row")))

    for t in _by_accuracy(front)[:top]:
        add(t, "front")
    on_front = {t.number for t in front}
    for t in _by_accuracy([t for t in complete if t.number not in on_front])[: max(top - len(seen), 0)]:
        add(t, "next best")
    baseline = _baseline_trial(trials)
    if baseline is not None:
        add(baseline, "baseline")
    rows = [t for t in complete if t.user_attrs.get("paper_row") not in (None, BASELINE_ROW)]
    if rows:
        add(_by_accuracy(rows)[0], "best paper row")
    return chosen


def _baseline_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The baseline row: its COMPLETE run, else its latest run that has a config and a GFLOPs figure.

    A retry of a row cut short carries the row's label too, hence the choice among several.
    """
    rows = [t for t in trials if t.user_attrs.get("paper_row") == BASELINE_ROW
            and "config" in t.user_attrs and (t.state == TrialState.COMPLETE or "gflops" in t.user_attrs)]
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
        record.state == TrialState.FAIL and record.user_attrs.get("status") == NON_FINITE)


def plan(candidates: Sequence[Candidate], seeds: Sequence[int], records: Sequence[FrozenTrial]) -> Plan:
    """Which (trial, seed) runs remain, given the confirm study's ``records``.

    Candidates in their order, each with every seed in order; a pair is done when a
    record of it `is_final`. Records left RUNNING are listed for failing (this process is
    the confirm study's only writer, so a RUNNING record is a dead process's).
    """
    final = {(r.user_attrs.get(CONFIRMS), r.user_attrs.get(SEED)) for r in records if is_final(r)}
    out = Plan(left_running=[r.number for r in records if r.state == TrialState.RUNNING])
    for c in candidates:
        for s in seeds:
            (out.done if (c.number, s) in final else out.todo).append(Run(c.number, s))
    return out


def run_config(trial: FrozenTrial, seed: int, split_seed: int) -> dict[str, Any]:
    """The search trial's own config (what export would write), with a new seed on the search's split."""
    config = {section: dict(values) for section, values in trial.user_attrs["config"].items()}
    config["optim"]["seed"] = seed
    config["data"]["split_seed"] = split_seed
    return config


# -- recording -------------------------------------------------------------------------------


def open_confirm_study(study: optuna.Study, storage: optuna.storages.BaseStorage,
                       create: bool = True) -> optuna.Study | None:
    """``<study>:confirm`` in ``storage``, the study's (created with the same objectives when missing and ``create``)."""
    name = confirm_study_name(study.study_name)
    if name not in optuna.get_all_study_names(storage):
        if not create:
            return None
        confirm = optuna.create_study(study_name=name, storage=storage, directions=study.directions)
        if study.metric_names:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                confirm.set_metric_names(study.metric_names)
        confirm.set_user_attr("confirms_study", study.study_name)
        return confirm
    return optuna.load_study(study_name=name, storage=storage)


def fail_left_running(confirm: optuna.Study, numbers: Sequence[int], reason: str = DRIVER_DIED) -> None:
    for frozen in confirm.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number in numbers:
            optuna.Trial(confirm, frozen._trial_id).set_user_attr("reason", reason)
            confirm.tell(frozen.number, state=TrialState.FAIL)


class Recorder:
    """Keeps the confirm study in step with Ray: a RUNNING record per started run, its curve, then COMPLETE or FAIL.

    Driven by `RecorderCallback` (Ray Tune's callback hooks, in the driver process); plain
    methods so tests can drive it without Ray.
    """

    def __init__(self, confirm: optuna.Study, candidates: Sequence[Candidate], configs: dict[tuple[int, int], dict],
                 epochs: int, log: Callable[[str], None] = print) -> None:
        self.confirm = confirm
        self.candidates = {c.number: c for c in candidates}
        self.configs = configs
        self.epochs = epochs
        self.log = log
        self.live: dict[str, tuple[optuna.Trial, Run, list[float], dict[str, Any]]] = {}

    def start(self, key: str, run: Run) -> None:
        c = self.candidates[run.confirms]
        trial = self.confirm.ask()
        attrs: dict[str, Any] = {CONFIRMS: run.confirms, SEED: run.seed, ROLE: c.role, "gflops": c.gflops,
                                 "config": self.configs[(run.confirms, run.seed)], "curve": [], "epochs_run": 0}
        if c.paper_row:
            attrs["paper_row"] = c.paper_row
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        self.live[key] = (trial, run, [], {})

    def result(self, key: str, result: dict[str, Any]) -> None:
        if key not in self.live:
            return
        trial, _, curve, state = self.live[key]
        if "error" in result:
            state["error"] = str(result["error"])
        elif result.get("status") == NON_FINITE:
            state["non_finite"] = str(result.get("reason") or "non-finite loss")
        elif "val_top1" in result:
            epoch = int(result.get("epoch", len(curve) + 1))
            if epoch == 1 and curve:  # Ray re-ran it (retries): the failed attempt's curve is not this run's
                curve.clear()
                state.clear()
            curve[epoch - 1:] = [float(result["val_top1"])]
            for k, v in {"curve": list(curve), "epochs_run": len(curve),
                         "train_seconds": float(result.get("train_seconds", 0.0)),
                         "node_id": str(result.get("node_id", ""))}.items():
                trial.set_user_attr(k, v)

    def complete(self, key: str, errored: bool = False) -> None:
        if key not in self.live:
            return
        trial, run, curve, state = self.live.pop(key)
        gflops = self.candidates[run.confirms].gflops
        if errored or "error" in state:
            self._tell(trial, run, TrialState.FAIL, reason="raised", error=state.get("error", "the process died"))
        elif "non_finite" in state:
            self._tell(trial, run, TrialState.FAIL, reason=state["non_finite"], status=NON_FINITE)
        elif len(curve) >= self.epochs:
            trial.set_user_attr("val_top1", curve[-1])
            self._tell(trial, run, TrialState.COMPLETE, [curve[-1], gflops], reason="completed")
        else:
            self._tell(trial, run, TrialState.FAIL, reason=f"stopped after {len(curve)} of {self.epochs} epochs")

    def fail_live(self, reason: str) -> None:
        for key in list(self.live):
            trial, run, _, _ = self.live.pop(key)
            self._tell(trial, run, TrialState.FAIL, reason=reason)

    def _tell(self, trial: optuna.Trial, run: Run, state: TrialState, values: list[float] | None = None,
              **attrs: Any) -> None:
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        self.confirm.tell(trial, values, state=state)
        what = f"val_top1 {values[0]:.4f}" if values else attrs.get("reason", "")
        self.log(f"confirm trial {run.confirms:3d} seed {run.seed}: {state.name} {what}")


# -- Ray ---------------------------------------------------------------------------------------


def _key(run: Run) -> str:
    return f"{run.confirms}:{run.seed}"


def confirm_trial(config: dict[str, Any], *, configs: dict[str, dict[str, Any]]) -> None:
    """Ray function trainable: the search trainable's fit-and-report on one (trial, seed) config."""
    from search.trainable import train_config

    train_config(configs[config["run"]])


def _tune(spec: Any, runs: Sequence[Run], recorder: Recorder, study_dir: Path, trainable: Callable[..., Any] | None,
          verbose: bool) -> bool:
    """Train ``runs`` as Ray trials (no searcher: a fixed grid); returns True when interrupted."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    from ray import tune

    from search.run import _check_resources, _ray_init  # phase 2: search.tuner

    class RecorderCallback(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.start(trial.trial_id, _run_of(trial))

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            recorder.result(trial.trial_id, result)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.complete(trial.trial_id)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.complete(trial.trial_id, errored=True)

    if not verbose:
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
    owns_ray = _ray_init(spec, verbose)
    try:
        _check_resources(spec)
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
        try:
            tuner.fit()
        except KeyboardInterrupt:
            pass
    finally:
        if owns_ray:
            import ray

            ray.shutdown()
    return bool(recorder.live)


def _run_of(trial: Any) -> Run:
    confirms, seed = trial.config["run"].split(":")
    return Run(int(confirms), int(seed))


def _trial_name(trial: Any) -> str:
    run = _run_of(trial)
    return f"confirm_{run.confirms}_seed{run.seed}"


# -- the driver and the CLI ------------------------------------------------------------------


@dataclass
class Outcome:
    confirm: optuna.Study
    candidates: list[Candidate]
    plan: Plan
    interrupted: bool
    wall_seconds: float


def run_confirm(study: optuna.Study, storage: optuna.storages.BaseStorage, study_dir: str | Path, *, top: int = DEFAULT_TOP, seeds: int = DEFAULT_SEEDS,
                trainable: Callable[..., Any] | None = None, verbose: bool = False,
                log: Callable[[str], None] = print) -> Outcome:
    """Confirm ``study``'s front (see the module doc); the spec (resources, epochs, seed) is the study's own."""
    from search import spec as spec_mod

    started = time.perf_counter()
    if top < 1 or seeds < 1:
        raise ValueError(f"--top and --seeds must be >= 1, got {top} and {seeds}")
    if "spec" not in study.user_attrs:
        raise ValueError(f"study {study.study_name!r} has no 'spec' attr (not written by search.run?)")
    spec = spec_mod.from_dict(study.user_attrs["spec"])
    trials = study.get_trials(deepcopy=False)
    candidates = choose_candidates(trials, budget.pareto_front(study), top)
    if not candidates:
        raise ValueError(f"study {study.study_name!r} has no COMPLETE trial within the FLOPs budget to confirm")
    by_number = {t.number: t for t in trials}
    seed_list = confirm_seeds(spec.seed, seeds)
    configs = {(c.number, s): run_config(by_number[c.number], s, spec.seed) for c in candidates for s in seed_list}

    confirm = open_confirm_study(study, storage)
    todo = plan(candidates, seed_list, confirm.get_trials(deepcopy=False))
    if todo.left_running:
        fail_left_running(confirm, todo.left_running)
        log(f"confirm: runs {', '.join(map(str, todo.left_running))} were left RUNNING by a dead process: FAIL, "
            f"run again")
    roles = ", ".join(f"{c.number} ({c.role})" for c in candidates)
    log(f"confirm {study.study_name!r}: trials {roles} x seeds {', '.join(map(str, seed_list))}: "
        f"{len(todo.todo)} runs to train, {len(todo.done)} already recorded; {spec.epochs} epochs each, "
        f"{spec.concurrency} at a time")
    interrupted = False
    if todo.todo:
        recorder = Recorder(confirm, candidates, configs, spec.epochs, log)
        try:
            interrupted = _tune(spec, todo.todo, recorder, Path(study_dir), trainable, verbose)
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            recorder.fail_live(INTERRUPTED)
    return Outcome(confirm, candidates, todo, interrupted, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    import sqlalchemy

    from search.studydir import add_study_arguments, open_study, read_pointer, storage_for

    parser = argparse.ArgumentParser(prog="python -m search.confirm", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"front trials to confirm (default {DEFAULT_TOP})")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=f"new seeds per trial (default {DEFAULT_SEEDS})")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own output and the trials' logs")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = open_study(args.study, args.storage)
        storage = storage_for(args.storage or read_pointer(args.study).storage)
        outcome = run_confirm(study, storage, args.study, top=args.top, seeds=args.seeds, verbose=args.verbose)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, sqlalchemy.exc.SQLAlchemyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if outcome.interrupted:
        again = shlex.join(["python", "-m", "search.confirm", *(argv if argv is not None else sys.argv[1:])])
        print(f"interrupted: finished runs are kept; run again to train the rest:\n  {again}", file=sys.stderr)
        return 130
    print(f"confirmed in {outcome.wall_seconds:.0f} s; report: python -m search.report --study {shlex.quote(args.study)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
