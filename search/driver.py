"""One search, start to end: pre-flight, the study, the trials under Ray, the confirmation.

`run_search` is what ``python -m search.run`` calls and what tests and benchmarks call
with a scripted trainable (it serves the confirmation too). Every check (address,
storage, data, weights, FLOPs, Ray resources, every other node's data: `search.nodes`)
runs before the study is created, the pixel cache (``data.cache_dir``) is built once here,
before the first trial, and one Ray session (`search.tuner.ray_session`) spans the trials
and the confirmation. ``concurrency: auto`` is settled on the cluster once Ray is up, and
the plan (`search.plan`: epochs per phase, hours with an epoch time) is printed before the
first trial. A complete trial trains the schedule up to its dead tail
(`search.spec.StudySpec.trained_epochs`), recorded on the study. Faults: a
trial that raises is FAIL and the search goes on (``retries`` re-runs first). A killed
driver, ``--resume`` and Ctrl-C are `search.resume`'s story: the driver calls it at the
start (a resumed study's dead trials) and after an interrupted run (the trials in flight).
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from fgmodel.config import RunConfig
from search import attrs, budget, nodes, preflight
from search import confirm as confirm_mod
from search import plan as plan_mod
from search import resume as resume_mod
from search import study as study_mod
from search.moasha import rung_curves
from search.progress import Reporter
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
    epoch_seconds: float | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
    """The whole search for ``spec``; ``trainable`` replaces `search.trainable.train_trial` (tests): it gets
    a `search.trainable.trial_config` dict, for the search's trials and the confirmation's runs alike.
    ``epoch_seconds``: one 224-px epoch of one trial, for the plan's hours."""
    started = time.perf_counter()
    import spaces
    from search import tuner

    spaces.get(spec.space)  # unknown space: one line, before anything starts
    study = None
    with contextlib.ExitStack() as ray_up:
        try:
            # Pre-flight: every check before anything is written, so a failed one leaves no study behind.
            base = spec.base_config()
            tuner.check_address(spec)
            url = spec.storage or default_storage(spec.directory)
            preflight.check_storage(spec, url, resume)
            val_images = preflight.check_data(base)
            base, pretrained = preflight.resolve_pretrained(base, log)
            baseline_gflops = preflight.baseline_gflops(base, spec.image_size)
            trained = spec.trained_epochs(base)
            base = build_cache(base, spec)
            ray_up.enter_context(tuner.ray_session(spec, verbose))
            run_spec = tuner.resolve_resources(spec)  # concurrency / cpus_per_trial "auto" settled on the cluster
            nodes.check_nodes(base, run_spec.cpus_per_trial, run_spec.gpus_per_trial)

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
                resume_mod.recover_dead(study, log)
        except KeyboardInterrupt:
            raise Interrupted(study_created=study is not None) from None

        counted = counted_trials(study)
        n_trials = study_mod.target_trials(study, spec.trials, counted, log)
        remaining = n_trials - counted
        limit = budget.limit(baseline_gflops, spec.budget)
        log(f"study {spec.study_name!r}: {spec.trials} trials ({max(remaining, 0)} to run), {run_spec.concurrency} at "
            f"a time ({run_spec.cpus_per_trial:g} CPUs, {spec.gpus_per_trial:g} GPUs each), {trained} of "
            f"{spec.epochs} epochs max; baseline {baseline_gflops:.4g} GFLOPs, budget limit {limit:.4g} GFLOPs")
        log(plan_mod.describe(plan_mod.plan_for(run_spec, trained=trained, paper_rows=len(rows),
                                                slots=run_spec.concurrency, top=confirm_mod.DEFAULT_TOP,
                                                seeds=confirm_mod.DEFAULT_SEEDS),
                              epoch_seconds))
        log(f"dashboard: optuna-dashboard {shlex.quote(display_url(url))}")

        searcher = None
        interrupted = False
        if remaining > 0:
            searcher = StudySearcher(
                study, spec.space, base, measure=preflight.measure_fn(), baseline_gflops=baseline_gflops,
                budget=spec.budget, epochs=trained, n_trials=n_trials, log=log,
                complete_reason=plan_mod.dead_tail(spec.epochs, trained, spec.dead_lr_fraction) or "completed",
            )
            study.start_heartbeat()
            try:
                tuner.run_trials(
                    run_spec, name=spec.study_name, searcher=searcher, num_samples=remaining,  # trained trials only
                    study_dir=study_dir, trainable=trainable, verbose=verbose,
                    scheduler=tuner.make_scheduler(spec, rung_curves(study.get_trials(deepcopy=False)), trained),
                    callbacks=[tuner.progress_callback(Reporter(study, n_trials, run_spec.concurrency, log))],
                )
                interrupted = bool(searcher.live) or (counted_trials(study) < n_trials and not searcher.exhausted)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                study.stop_heartbeat()
            if interrupted:
                resume_mod.recover_interrupted(study, searcher.fail_live(attrs.INTERRUPTED))
        left = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
        if left and not interrupted:
            log(f"trials {', '.join(map(str, left))} are still queued (WAITING): --resume runs them")
        confirm = open_confirm_study(study, storage_for(url), create=False)
        if spec.confirm is not None and not interrupted:  # on the Ray the search used
            confirmed = confirm_mod.run_confirm(study, url, study_dir, spec=run_spec, trainable=trainable,
                                                verbose=verbose, log=log)
            confirm, interrupted = confirmed.confirm, confirmed.interrupted
    return Outcome(study, study_dir, interrupted, time.perf_counter() - started, searcher, confirm)


def build_cache(base: RunConfig, spec: StudySpec) -> RunConfig:
    """Build the pixel cache of every image size the space may draw, here, once, before the first trial.

    Returns ``base`` with ``data.cache_dir`` absolute (it was relative to the driver's
    working directory), so the trials and the confirmation, wherever Ray runs them, read the
    one copy, and none builds it while holding its GPU. Without ``data.cache_dir``: ``base``.
    """
    if base.data.cache_dir is None:
        return base
    from fgmodel.data.loader import build_caches

    return build_caches(base, image_sizes=space_image_sizes(spec.space, base, spec.budget))


def space_image_sizes(space: str, base: RunConfig, budget_: float, draws: int = 200) -> list[int]:
    """The image sizes ``space`` proposes under the budget: the base size, then those of ``draws`` random proposals
    (a define-by-run space declares its choices only as it draws them; each draw takes about a millisecond)."""
    import spaces

    fn = spaces.get(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sizes = {base.data.image_size}
    for _ in range(draws):
        sizes.add(fn(study.ask(), base, budget=budget_).data.image_size)
    return sorted(sizes)
