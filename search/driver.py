"""One search, start to end: pre-flight, the study, the trials under Ray, the confirmation.

`run_search` is what ``python -m search.run`` calls and what tests and benchmarks call
with a scripted trainable. Every check (address, storage, data, weights, FLOPs, Ray
resources) runs before the study is created. Faults: a trial that raises is FAIL and
the search goes on (``retries`` re-runs first). A killed driver leaves RUNNING trials
behind; ``--resume`` marks FAIL ("driver died") those whose heartbeat stopped (a live
driver's are left to it), queues their configs again and runs only the remaining count.
Ctrl-C stops the trials and marks them FAIL ("interrupted").
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search import attrs, budget, preflight
from search import confirm as confirm_mod
from search import study as study_mod
from search.searcher import StudySearcher, counted_trials
from search.spec import StudySpec
from search.studydir import (
    StudyPointer,
    default_storage,
    display_url,
    open_confirm_study,
    storage_for,
    write_pointer,
)


class Interrupted(Exception):
    """Ctrl-C before Ray started (data check, FLOPs, opening the study)."""

    def __init__(self, study_created: bool):
        super().__init__("interrupted before the trials started")
        self.study_created = study_created


@dataclass
class Outcome:
    study: optuna.Study
    study_dir: Path
    interrupted: bool
    wall_seconds: float
    searcher: StudySearcher | None
    confirm: optuna.Study | None = None  # the "<name>:confirm" study (search.confirm), when there is one


def run_search(
    spec: StudySpec,
    *,
    resume: bool = False,
    trainable: Callable[..., Any] | None = None,
    verbose: bool = False,
    log: Callable[[str], None] = print,
) -> Outcome:
    """The whole search for ``spec``; ``trainable`` replaces `search.trainable.train_trial` (tests)."""
    started = time.perf_counter()
    import spaces
    from search import tuner

    spaces.get(spec.space)  # unknown space: one line, before anything starts
    study = None
    owns_ray = False
    try:
        try:
            # Pre-flight: every check before anything is written, so a failed one leaves no study behind.
            base = spec.base_config()
            tuner.check_address(spec)
            url = spec.storage or default_storage(spec.directory)
            preflight.check_storage(spec, url, resume)
            val_images = preflight.check_data(base)
            base, pretrained = preflight.resolve_pretrained(base, log)
            baseline_gflops = preflight.baseline_gflops(base, spec.image_size)
            owns_ray = tuner.start_ray(spec, verbose)

            study_dir = spec.directory
            study_dir.mkdir(parents=True, exist_ok=True)
            study = study_mod.open_for_search(spec, url, resume=resume, base=base)
            write_pointer(study_dir, StudyPointer(storage=url, study_name=spec.study_name))
            study.set_user_attr(attrs.VAL_IMAGES, val_images)
            rows = spaces.paper_rows(spec.space, base) if spec.paper else []
            redone = study_mod.complete_setup(study, spec, base, baseline_gflops, pretrained, rows, log)
            if resume:
                if redone:
                    log("resume: the study's setup had been cut short: attrs and paper rows completed")
                study_mod.recover_dead(study, log)
        except KeyboardInterrupt:
            raise Interrupted(study_created=study is not None) from None

        counted = counted_trials(study)
        n_trials = study_mod.target_trials(study, spec.trials, counted, log)
        remaining = n_trials - counted
        limit = budget.limit(baseline_gflops, spec.budget)
        log(f"study {spec.study_name!r}: {spec.trials} trials ({max(remaining, 0)} to run), {spec.concurrency} at a "
            f"time, {spec.epochs} epochs max; baseline {baseline_gflops:.4g} GFLOPs, budget limit {limit:.4g} GFLOPs")
        log(f"dashboard: optuna-dashboard {shlex.quote(display_url(url))}")

        searcher = None
        interrupted = False
        if remaining > 0:
            searcher = StudySearcher(
                study, spec.space, base, measure=preflight.measure_fn(), baseline_gflops=baseline_gflops,
                budget=spec.budget, epochs=spec.epochs, n_trials=n_trials, log=log,
            )
            study.start_heartbeat()
            try:
                tuner.run_tuner(spec, searcher, study_dir, trainable, verbose, remaining)
                interrupted = bool(searcher.live) or (counted_trials(study) < n_trials and not searcher.exhausted)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                study.stop_heartbeat()
            if interrupted:
                study_mod.requeue(study, searcher.fail_live(attrs.INTERRUPTED))
                # anything this driver asked but had not handed to Ray yet
                study_mod.recover_left_over(study, attrs.INTERRUPTED, only=list(study.mine))
        left = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
        if left and not interrupted:
            log(f"trials {', '.join(map(str, left))} are still queued (WAITING): --resume runs them")
        confirm = open_confirm_study(study, storage_for(url), create=False)
        if spec.confirm is not None and not interrupted:  # on the Ray the search used
            confirmed = confirm_mod.run_confirm(study, url, study_dir, spec=spec, verbose=verbose, log=log)
            confirm, interrupted = confirmed.confirm, confirmed.interrupted
    finally:
        tuner.stop_ray(owns_ray)
    return Outcome(study, study_dir, interrupted, time.perf_counter() - started, searcher, confirm)
