"""The search's study: create it or open it to resume, its attrs, its sampler, its setup.

A search owns one Optuna study (directions ``[val_top1 up, GFLOPs down]``). A new study
gets the spec and base config as attrs, its objectives' names and the paper's Table 1
rows queued first, then ``setup_complete`` (`complete_setup`: a resume redoes whatever an
interrupted setup left out). A resumed one must match those attrs
(`search.resume.check_resume`) and gets a reseeded sampler. Either way the driver holds it
as a `search.resume.DriverStudy`, whose heartbeat lets a later resume tell a dead
driver's trials from a live one's; the rest of the resume story is `search.resume`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from fgmodel.config import RunConfig, to_dict
from search import attrs
from search import spec as spec_mod
from search.dashboard import name_objectives
from search.resume import GRACE_BEATS, DriverStudy, check_resume
from search.sampler import StoppedTrialSampler
from search.spec import StudySpec
from search.studydir import display_url, storage_for

DIRECTIONS = ["maximize", "minimize"]  # [val_top1, gflops]


class StudyExists(ValueError):
    """A new study's name is taken, or a resumed one does not exist."""


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, wrapped to learn from stopped trials when a scheduler stops them, and GP always.

    ``tpe``: multivariate and grouped (the conditional params, L2SP lambda and the SCRA
    kernel, are modelled jointly with the choices they depend on), constant liar for
    parallel trials. ``gp``: Optuna's GPSampler (constrained LogEHVI; it needs scipy,
    a dependency). ``random``: the baseline. (NSGA-II is not offered: it
    learns only from COMPLETE trials, so it would never see the budget of the over-budget
    trials the searcher prunes.)

    With ``moasha`` or ``asha`` most trained trials end PRUNED, and a multi-objective
    study cannot tell Optuna how far or how well they got; ``learn_from_stopped`` puts
    TPE or GP on `search.sampler.StoppedTrialSampler`'s view of the study instead.
    GP is on the view whatever the scheduler and ``learn_from_stopped``: it fits only
    COMPLETE and RUNNING trials, so on the real study it would never see the over-budget
    proposals (PRUNED) and could keep proposing over the budget; the view shows them
    COMPLETE at the lowest top-1 seen, with their constraint.

    The FLOPs constraint reaches the sampler through ``trial.set_constraint`` in the
    searcher, set when the trial is asked, so it holds for every state, PRUNED
    over-budget trials included. A resumed study reseeds (seed + trials so far) so it
    does not replay its first draws.
    """
    seed = spec.seed + seed_offset

    def inner(inner_seed: int | None) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if spec.sampler == "random":
                return optuna.samplers.RandomSampler(seed=inner_seed)
            if spec.sampler == "gp":
                return optuna.samplers.GPSampler(seed=inner_seed)
            return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=inner_seed)

    if spec.sampler == "gp" or (spec.learn_from_stopped and spec.scheduler != "fifo" and spec.sampler != "random"):
        return StoppedTrialSampler(inner, seed=seed)
    return inner(seed)


def open_for_search(spec: StudySpec, url: str, *, resume: bool, base: RunConfig | None = None) -> DriverStudy:
    """Create the spec's study in ``url``, or load it to resume (checked against the spec)."""
    storage = storage_for(url, heartbeat=spec.heartbeat, grace=GRACE_BEATS * spec.heartbeat)
    check_exists(spec, url, resume, optuna.get_all_study_names(storage))
    name = spec.study_name
    if not resume:
        sampler = make_sampler(spec)
        optuna.create_study(study_name=name, storage=storage, directions=DIRECTIONS, sampler=sampler)
        return DriverStudy(name, storage, sampler, spec.heartbeat)
    study = DriverStudy(name, storage, None, spec.heartbeat)
    check_resume(study.user_attrs, spec, base if base is not None else spec.base_config())
    study.sampler = make_sampler(spec, seed_offset=len(study.get_trials(deepcopy=False)))
    return study


def check_exists(spec: StudySpec, url: str, resume: bool, names: list[str]) -> None:
    """A new study's name must be free among ``names``, a resumed one must be there (`StudyExists`, one line)."""
    name = spec.study_name
    if name in names and not resume:
        raise StudyExists(
            f"study {name!r} already exists in {display_url(url)}: pass --resume to continue it, "
            f"or --name NEW for a fresh study"
        )
    if name not in names and resume:
        raise StudyExists(f"no study {name!r} in {display_url(url)} to resume; run without --resume to start it")


def target_trials(study: optuna.Study, requested: int, counted: int, log: Callable[[str], None] = print) -> int:
    """The searcher's target: ``requested``, or more when the queued (WAITING) trials exceed what is left,
    so that they are run rather than left behind (re-runs of cut-short trials, paper rows)."""
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    target = max(requested, counted + waiting)
    if target > requested:
        log(f"{waiting} queued trials (re-runs, paper rows) exceed the {max(requested - counted, 0)} left of "
            f"{requested}: running them all, {target} trials in the study")
    return target


def set_study_attrs(
    study: optuna.Study, spec: StudySpec, base: RunConfig, baseline_gflops: float, pretrained: str = "none"
) -> None:
    values = {
        "task": spec.task,
        "base": spec.base,
        "backbone": spec.backbone,
        attrs.PRETRAINED: pretrained,  # the weights' effective source (see preflight.resolve_pretrained)
        "seed": spec.seed,
        "image_size": spec.image_size,
        "epochs": spec.epochs,
        attrs.TRAINED_EPOCHS: spec.trained_epochs(base),
        "budget": spec.budget,
        attrs.BASELINE_GFLOPS: baseline_gflops,
        "space": spec.space,
        attrs.BASE_CONFIG: to_dict(base),
        attrs.SPEC: {k: v for k, v in spec_mod.to_dict(spec).items() if k != "storage"},
    }
    for key, value in values.items():
        study.set_user_attr(key, value)


def enqueue_paper_rows(study: optuna.Study, rows: list[tuple[str, dict[str, Any]]], limit: int) -> list[str]:
    """Queue the paper's Table 1 rows not yet in the study, at most ``limit`` in all (the trials
    requested), so they are the first trials the searcher asks; returns the labels left out."""
    have = {t.user_attrs.get(attrs.PAPER_ROW) for t in study.get_trials(deepcopy=False)} - {None}
    room = max(limit - len(have), 0)
    missing = [(label, params) for label, params in rows if label not in have]
    for label, params in missing[:room]:
        study.enqueue_trial(params, user_attrs={attrs.PAPER_ROW: label})
    return [label for label, _ in missing[room:]]


def complete_setup(
    study: optuna.Study,
    spec: StudySpec,
    base: RunConfig,
    baseline_gflops: float,
    pretrained: str,
    rows: list[tuple[str, dict[str, Any]]],
    log: Callable[[str], None] = print,
) -> bool:
    """Give a study its attrs, objective names and queued paper rows, then mark it ``setup_complete``.

    The marker is written last, so a setup cut short (Ctrl-C, SIGKILL) is redone on
    ``--resume``; every step is idempotent (rows already queued are not queued twice).
    Returns whether anything was done.
    """
    if study.metric_names is None:
        name_objectives(study)  # also for studies made before the names were set
    if study.user_attrs.get(attrs.SETUP_COMPLETE):
        return False
    set_study_attrs(study, spec, base, baseline_gflops, pretrained)
    if spec.paper:
        left_out = enqueue_paper_rows(study, rows, spec.trials)
        if left_out:
            log(f"trials {spec.trials} < the paper's {len(rows)} rows: not queued: {', '.join(left_out)}")
    study.set_user_attr(attrs.SETUP_COMPLETE, True)
    return True


