"""Confirm the front: train its best configs again with new seeds, so a pick rests on means, not on one run.

    python -m search.confirm --study studies/cub [--top 4] [--seeds 3] [--race] [--futility 0.15] [--storage URL]

The single best run of a search is partly the luckiest (the winner's curse). This module
re-trains, at the study's full fidelity and on the split each trial was selected on, the
candidates `search.confirmed.choose_candidates` names (the top of the front, its knee, the
baseline row, the best paper row) with new seeds (the study's seed + 1, + 2, ...; the
search's own run is left out: it was selected for being high). With ``race`` the seeds go
in rounds and a candidate stops once clearly dominated, or once its remaining seeds would
change the fixed design's picks with a chance under ``futility`` (`search.racing`); each
round is one `search.tuner.run_trials` call, the search's own path to Ray.

Each run is a trial of a second study, ``<study>:confirm``, in the same storage (so
optuna-dashboard shows it beside the search), with the attrs ``confirms``, ``seed``,
``config``, ``curve``, ``val_top1``, ``gflops`` and ``paper_row``; its ``design`` attr lets
the report and the export recompute the race. Resume-safe (`search.resume`): a COMPLETE or
diverged (trial, seed) is never run again, a RUNNING one a killed process left is failed and
run again, Ctrl-C keeps the finished runs. `search.confirmed` holds the plain functions:
what to run and what the records say.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search import attrs, pareto, racing
from search.confirmed import (
    DEFAULT_SEEDS,
    DEFAULT_TOP,
    NON_FINITE,
    Candidate,
    Design,
    Run,
    choose_candidates,
    left_running,
    own_runs,
    progress,
    run_config,
    split_of,
    summarize,
)
from search.live import LiveTrial
from search.racing import Race
from search.resume import fail_left_running


class Recorder:
    """Keeps the confirm study in step with Ray: a RUNNING record per started run, its curve, then COMPLETE or FAIL.

    Driven by Ray Tune's callback hooks in the driver process (see `_callback`); plain
    methods, so tests drive it without Ray. A run's reports are followed by the search's
    own `search.live.LiveTrial` (the curve, and Ray's retries starting over).
    """

    def __init__(self, confirm: optuna.Study, candidates: Sequence[Candidate],
                 configs: Mapping[tuple[int, int], dict[str, Any]], epochs: int,
                 log: Callable[[str], None] = print) -> None:
        self.confirm = confirm
        self.candidates = {c.number: c for c in candidates}
        self.configs = configs
        self.epochs = epochs
        self.log = log
        self.live: dict[str, LiveTrial] = {}
        self.runs: dict[str, Run] = {}

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
        self.live[key] = LiveTrial(trial, c.gflops, self.epochs)
        self.runs[key] = run

    def result(self, key: str, result: Mapping[str, Any]) -> None:
        if key in self.live:
            self.live[key].record(result)

    def complete(self, key: str, errored: bool = False) -> None:
        if key not in self.live:
            return
        live, run = self.live.pop(key), self.runs.pop(key)
        error = live.failure(errored)
        if error is not None:
            self._tell(live, run, TrialState.FAIL, reason="raised", error=error)
        elif live.non_finite:
            self._tell(live, run, TrialState.FAIL, reason=live.non_finite, status=NON_FINITE)
        elif live.full:
            top1 = live.curve[-1]
            hits = {attrs.VAL_HITS: live.val_hits} if live.val_hits else {}
            self._tell(live, run, TrialState.COMPLETE, [top1, live.gflops], reason="completed", val_top1=top1, **hits)
        else:
            self._tell(live, run, TrialState.FAIL, reason=f"stopped after {len(live.curve)} of {self.epochs} epochs")

    def fail_live(self, reason: str) -> None:
        for key in list(self.live):
            self._tell(self.live.pop(key), self.runs.pop(key), TrialState.FAIL, reason=reason)

    def _tell(self, live: LiveTrial, run: Run, state: TrialState, values: list[float] | None = None,
              **extra: Any) -> None:
        for k, v in extra.items():
            live.trial.set_user_attr(k, v)
        self.confirm.tell(live.trial, values, state=state)
        what = f"val_top1 {values[0]:.4f}" if values else extra["reason"]
        self.log(f"confirm trial {run.confirms:3d} seed {run.seed}: {state.name:8s} {what}")


def _callback(recorder: Recorder) -> Any:
    """The Tune callback that drives ``recorder`` from the trials' configs (`search.trainable.trial_config`)."""
    from ray import tune

    def run_of(trial: Any) -> Run:
        return Run(int(trial.config["number"]), int(trial.config[attrs.SEED]))

    class RecorderCallback(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.start(trial.trial_id, run_of(trial))

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            recorder.result(trial.trial_id, result)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.complete(trial.trial_id)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.complete(trial.trial_id, errored=True)

    return RecorderCallback()


def _train(spec: Any, runs: Sequence[Run], recorder: Recorder, study_dir: Path,
           trainable: Callable[..., Any] | None, verbose: bool) -> None:
    """Train ``runs`` as Ray trials, in order, with no scheduler (every run goes all epochs)."""
    from search.trainable import trial_config
    from search.tuner import FixedTrials, run_trials

    trials = []
    for r in runs:
        c = recorder.candidates[r.confirms]
        trials.append(trial_config(f"confirm_{r.confirms}_seed{r.seed}", r.confirms,
                                   recorder.configs[(r.confirms, r.seed)], c.gflops, c.paper_row,
                                   stop_after=recorder.epochs, seed=r.seed))
    run_trials(spec, name=f"{spec.study_name}-confirm", searcher=FixedTrials(trials), num_samples=len(trials),
               study_dir=study_dir, trainable=trainable, callbacks=[_callback(recorder)], verbose=verbose)


# -- the driver and the CLI ------------------------------------------------------------------


@dataclass
class Outcome:
    confirm: optuna.Study
    candidates: list[Candidate]
    design: Design
    state: Race  # where it stands: its rounds and stops, and the runs still lacking (a failure or Ctrl-C)
    interrupted: bool
    wall_seconds: float


def settings(block: Mapping[str, Any] | None, top: int | None = None, seeds: int | None = None,
             race: bool | None = None, seed: int = 0, futility: float | None = None) -> Design:
    """The design: the arguments, else the spec's ``confirm:`` block, else the defaults; ``seed``: the study's."""
    design = Design.of(block, seed, top=top, seeds=seeds, race=race, futility=futility)
    if design.top < 1 or design.seeds < 1:
        raise ValueError(f"confirm needs --top >= 1 and --seeds >= 1, got {design.top} and {design.seeds}")
    if not 0.0 <= design.futility < 1.0:
        raise ValueError(f"confirm needs 0 <= --futility < 1, got {design.futility}")
    return design


def stored_spec(study: optuna.Study) -> Any:
    """The `search.spec.StudySpec` the study was created with (its ``spec`` attr)."""
    from search import spec as spec_mod

    if attrs.SPEC not in study.user_attrs:
        raise ValueError(f"study {study.study_name!r} has no {attrs.SPEC!r} attr (not written by search.run?)")
    return spec_mod.from_dict(study.user_attrs[attrs.SPEC])


def _names(numbers: Sequence[int]) -> str:
    return ", ".join(map(str, numbers))


def _log_rounds(state: Race, since: int, log: Callable[[str], None]) -> int:
    """Log the rounds ``state`` completed after the first ``since``; returns how many are logged now."""
    for k, r in enumerate(state.rounds[since:], start=since + 1):
        stops = "".join(f"; stop trial {s.number}: {s.reason}" for s in r.stopped)
        log(f"confirm: round {k} (seed {r.seed}) done: trials {_names(r.ran)}{stops}")
    if state.rounds and not state.todo and len(state.rounds) > since:
        one = len(state.alive) == 1
        same = ("" if state.settled is None else f" (with every seed run, the fixed design would pick what the race "
                f"picks now in {state.settled:.1%} of the simulated completions)")
        log(f"confirm: the race is over after round {len(state.rounds)}: trial{'' if one else 's'} "
            f"{_names(state.alive)} {'remains' if one else 'remain'}{same}")
    return len(state.rounds)


def run_confirm(study: optuna.Study, storage: str, study_dir: str | Path, *, spec: Any = None,
                top: int | None = None, seeds: int | None = None, race: bool | None = None,
                futility: float | None = None, trainable: Callable[..., Any] | None = None, verbose: bool = False,
                log: Callable[[str], None] = print) -> Outcome:
    """Confirm ``study``'s front (see the module doc).

    ``storage``: the study's storage URL. ``spec``: the resources, concurrency, epochs and
    seed to use (default: the spec the study was created with); ``top``, ``seeds``, ``race``
    and ``futility`` default to its ``confirm:`` block. ``trainable`` replaces
    `search.trainable.train_trial` (tests).
    """
    from search.studydir import open_confirm_study, storage_for

    started = time.perf_counter()
    spec = spec if spec is not None else stored_spec(study)
    design = settings(spec.confirm, top, seeds, race, spec.seed, futility)
    epochs = int(study.user_attrs.get(attrs.TRAINED_EPOCHS) or spec.epochs)  # the search's complete trials'
    trials = study.get_trials(deepcopy=False)
    candidates = choose_candidates(trials, pareto.pareto_front(study), design.top)
    if not candidates:
        raise ValueError(f"study {study.study_name!r} has no COMPLETE trial within the FLOPs budget to confirm")
    by_number = {t.number: t for t in trials}
    configs = {(c.number, s): run_config(by_number[c.number], s) for c in candidates for s in design.seed_list}
    splits = sorted({split_of(by_number[c.number].user_attrs[attrs.CONFIG]) for c in candidates})
    if len(splits) > 1:
        log(f"confirm: warning: the candidates were selected on different validation splits ({_names(splits)}); "
            f"each is confirmed on its own, so their differences mix in the splits'")
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    step = 1.0 / val_images if val_images else None

    confirm = open_confirm_study(study, storage_for(storage))
    confirm.set_user_attr(attrs.DESIGN, design.to_dict())
    dead = left_running(confirm.get_trials(deepcopy=False))
    if dead:
        fail_left_running(confirm, dead)
        log(f"confirm: runs {_names(dead)} of {confirm.study_name!r} were left RUNNING by a dead process: "
            f"FAIL, run again")
    roles = ", ".join(f"{c.number} ({c.role})" for c in candidates)
    how = f"racing, at most {design.seeds} seeds" if design.race else f"{design.seeds} seeds each"
    log(f"confirm: trials {roles}; {how} ({_names(design.seed_list)}); {epochs} epochs each, "
        f"{spec.concurrency} at a time")
    recorder = Recorder(confirm, candidates, configs, epochs, log)
    own = own_runs(trials, candidates, epochs)
    interrupted, logged = False, 0
    tried: set[Run] = set()
    while True:
        state = progress(design, candidates, confirm.get_trials(deepcopy=False), step, own)
        logged = _log_rounds(state, logged, log)
        if not state.todo or interrupted:
            break
        if tried & set(state.todo):  # it ran in this process and raised: the next command runs it again
            log(f"confirm: runs of trials {_names(sorted({r.confirms for r in state.todo}))} failed; "
                f"run the command again to retry them")
            break
        tried |= set(state.todo)
        what = f"round {len(state.rounds) + 1} (seed {state.todo[0].seed})" if design.race else "runs"
        log(f"confirm: {what}: {len(state.todo)} to train (trials {_names(sorted({r.confirms for r in state.todo}))})")
        try:
            _train(spec, state.todo, recorder, Path(study_dir).resolve(), trainable, verbose)
        except KeyboardInterrupt:
            interrupted = True
        # Tune's own Ctrl-C handling returns from fit() with runs unfinished: they are still live here
        interrupted = interrupted or bool(recorder.live)
        recorder.fail_live(attrs.INTERRUPTED)
    confirmed = summarize(study, confirm)
    if confirmed is not None:
        log(f"confirm: {confirmed.cost()}")
    return Outcome(confirm, candidates, design, state, interrupted, time.perf_counter() - started)


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
    parser.add_argument("--seeds", type=int, help=f"new seeds per trial, the most under --race (default: the "
                                                  f"spec's, else {DEFAULT_SEEDS})")
    parser.add_argument("--race", action=argparse.BooleanOptionalAction,
                        help="seeds in rounds; a candidate stops once clearly dominated or futile (default: the "
                             "spec's, else no)")
    parser.add_argument("--futility", type=float,
                        help=f"under --race, the chance of changing the fixed design's picks a round may give up "
                             f"to stop candidates; 0: no curtailment (default: the spec's, else {racing.FUTILITY})")
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
                              top=args.top, seeds=args.seeds, race=args.race, futility=args.futility,
                              verbose=args.verbose)
        paths = write_reports(study, args.study, outcome.confirm)
        print("")
        print(paths.table)
        print(f"report: {paths.html}")
        if outcome.interrupted:
            again = shlex.join(["python", "-m", "search.confirm", *argv])
            print(f"interrupted: the finished runs are kept; run again to train the rest:\n  {again}",
                  file=sys.stderr)
            return 130
        if outcome.state.todo:
            again = shlex.join(["python", "-m", "search.confirm", *argv])
            print(f"incomplete: {len(outcome.state.todo)} runs failed; run again to retry them:\n  {again}",
                  file=sys.stderr)
            return 1
        print(f"confirmed in {outcome.wall_seconds:.0f} s; export: python -m search.export "
              f"--study {shlex.quote(args.study)} --pick knee --out best.yaml")
        return 0

    return run_main(run, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
