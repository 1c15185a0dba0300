"""The study's lifecycle: create or resume it, its attrs, its sampler, the trials a dead driver left.

A search owns one Optuna study (directions ``[val_top1 up, GFLOPs down]``). A new study
gets the spec and base config as attrs and the paper's Table 1 rows queued first; a
resumed one must match those attrs (`check_resume`), gets a reseeded sampler, and its
trials left RUNNING by a killed driver are failed and queued again.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.config import RESUME_FREE_KEYS, ConfigError, RunConfig, flatten, to_dict
from search import attrs
from search import spec as spec_mod
from search.spec import StudySpec
from search.studydir import display_url, storage_for

DIRECTIONS = ["maximize", "minimize"]  # [val_top1, gflops]
# Spec fields whose change would make a resumed study mix incomparable trials (the
# ``config:`` overrides and the effective pretrained weights are held fixed through the
# stored base config, see check_resume).
FIXED_ON_RESUME = ("task", "base", "backbone", "image_size", "epochs", "budget", "space", "seed")


class StudyExists(ValueError):
    """A new study's name is taken, or a resumed one does not exist."""


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """TPE: multivariate and grouped (the conditional params, L2SP lambda and the SCRA
    kernel, are modelled jointly with the choices they depend on), constant liar for
    parallel trials. (NSGA-II is not offered: it learns only from COMPLETE trials, so it
    would never see the budget of the over-budget trials the searcher prunes.)

    The FLOPs constraint reaches the sampler through ``trial.set_constraint`` in the
    searcher, set when the trial is asked, so it holds for every state, PRUNED
    over-budget trials included. A resumed study reseeds (seed + trials so far) so it
    does not replay its first draws.
    """
    seed = spec.seed + seed_offset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)


def open_for_search(spec: StudySpec, url: str, *, resume: bool, base: RunConfig | None = None) -> optuna.Study:
    """Create the spec's study in ``url``, or load it to resume (checked against the spec)."""
    storage = storage_for(url)
    names = optuna.get_all_study_names(storage)
    name = spec.study_name
    if name in names and not resume:
        raise StudyExists(
            f"study {name!r} already exists in {display_url(url)}: pass --resume to continue it, "
            f"or --name NEW for a fresh study"
        )
    if name not in names and resume:
        raise StudyExists(f"no study {name!r} in {display_url(url)} to resume; run without --resume to start it")
    if not resume:
        return optuna.create_study(study_name=name, storage=storage, directions=DIRECTIONS, sampler=make_sampler(spec))
    study = optuna.load_study(study_name=name, storage=storage)
    check_resume(study.user_attrs, spec, base if base is not None else spec.base_config())
    study.sampler = make_sampler(spec, seed_offset=len(study.get_trials(deepcopy=False)))
    return study


def check_resume(study_attrs: dict[str, Any], spec: StudySpec, base: RunConfig) -> None:
    """Refuse a resume whose spec or base config differs from the study's (`ConfigError` naming the field)."""
    for key in FIXED_ON_RESUME:
        was = study_attrs.get(key)
        now = getattr(spec, key)
        if was is not None and was != now:
            raise ConfigError(key, f"the study was created with {was!r}, not {now!r}; "
                                   f"resume with the same value or start a new --name")
    stored = study_attrs.get(attrs.BASE_CONFIG)
    if stored is None:
        return
    was, now = flatten(stored), flatten(to_dict(base))
    for key in sorted(set(was) | set(now)):
        before, after = was.get(key, "<unset>"), now.get(key, "<unset>")
        if key not in RESUME_FREE_KEYS and before != after:
            raise ConfigError(key, f"the study was created with {before!r}, now {after!r} (spec, its config: block "
                                   f"or the pretrained weights); resume with the same value or start a new --name")


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
        "budget": spec.budget,
        attrs.BASELINE_GFLOPS: baseline_gflops,
        "space": spec.space,
        attrs.BASE_CONFIG: to_dict(base),
        attrs.SPEC: {k: v for k, v in spec_mod.to_dict(spec).items() if k != "storage"},
    }
    for key, value in values.items():
        study.set_user_attr(key, value)


def enqueue_paper_rows(study: optuna.Study, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Queue the paper's Table 1 rows so they are the first trials the searcher asks."""
    for label, params in rows:
        study.enqueue_trial(params, user_attrs={attrs.PAPER_ROW: label})


def recover_left_over(study: optuna.Study, reason: str) -> list[int]:
    """Fail trials left RUNNING (a killed driver) and queue their configs again; returns their numbers."""
    numbers = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reopen(study, frozen).set_user_attr(attrs.REASON, reason)
        study.tell(frozen.number, state=TrialState.FAIL)
        requeue(study, [frozen.number])
        numbers.append(frozen.number)
    return numbers


def requeue(study: optuna.Study, numbers: list[int]) -> None:
    """Queue the configs of trials the driver cut short, so a resumed search runs them again."""
    for number in numbers:
        frozen = study.trials[number]
        if frozen.params:
            queued = {attrs.RETRY_OF: number}
            if attrs.PAPER_ROW in frozen.user_attrs:
                queued[attrs.PAPER_ROW] = frozen.user_attrs[attrs.PAPER_ROW]
            study.enqueue_trial(frozen.params, user_attrs=queued)


def reopen(study: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """A writable handle on a trial another process asked (to record why it is failed).

    Optuna has no public way to reopen a trial by number: this is the one place that
    reads the private ``FrozenTrial._trial_id``; tests/test_search_study.py fails loudly
    if an Optuna release drops it.
    """
    return optuna.Trial(study, frozen._trial_id)
