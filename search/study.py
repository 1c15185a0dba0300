"""The study's lifecycle: create or resume it, its attrs, its sampler, the trials a dead driver left.

A search owns one Optuna study (directions ``[val_top1 up, GFLOPs down]``). A new study
gets the spec and base config as attrs, its objectives' names and the paper's Table 1
rows queued first, then ``setup_complete`` (`complete_setup`: a resume redoes whatever an
interrupted setup left out). A resumed one must match those attrs (`check_resume`) and
gets a reseeded sampler. The driver holds the study as a `DriverStudy`, which keeps an
Optuna heartbeat for the trials it asked, so that a resume fails and queues again only
the RUNNING trials whose driver is dead (`dead_trials`), never those of a live one.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.config import RESUME_FREE_KEYS, ConfigError, RunConfig, flatten, to_dict
from search import attrs
from search import spec as spec_mod
from search.dashboard import name_objectives
from search.sampler import StoppedTrialSampler
from search.spec import StudySpec
from search.studydir import display_url, storage_for

DIRECTIONS = ["maximize", "minimize"]  # [val_top1, gflops]
# Spec fields whose change would make a resumed study mix incomparable trials (the
# ``config:`` overrides and the effective pretrained weights are held fixed through the
# stored base config, see check_resume).
FIXED_ON_RESUME = ("task", "base", "backbone", "image_size", "epochs", "budget", "space", "seed")
GRACE_BEATS = 3  # a RUNNING trial whose heartbeat is older than 3 intervals has a dead driver


class StudyExists(ValueError):
    """A new study's name is taken, or a resumed one does not exist."""


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, wrapped to learn from stopped trials when a scheduler stops them.

    ``tpe``: multivariate and grouped (the conditional params, L2SP lambda and the SCRA
    kernel, are modelled jointly with the choices they depend on), constant liar for
    parallel trials. ``gp``: Optuna's GPSampler (constrained LogEHVI; `spec` checked the
    Optuna release and scipy). ``random``: the baseline. (NSGA-II is not offered: it
    learns only from COMPLETE trials, so it would never see the budget of the over-budget
    trials the searcher prunes.)

    With ``moasha`` or ``asha`` most trained trials end PRUNED, and a multi-objective
    study cannot tell Optuna how far or how well they got; ``learn_from_stopped`` puts
    TPE or GP on `search.sampler.StoppedTrialSampler`'s view of the study instead.

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

    if spec.learn_from_stopped and spec.scheduler != "fifo" and spec.sampler != "random":
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


class DriverStudy(optuna.Study):
    """The study as a search driver holds it: every trial it asked keeps an Optuna heartbeat until told.

    Optuna records heartbeats only inside ``study.optimize``. The searcher asks and tells
    (Ray runs the trials), so this study records one itself when it asks, and then every
    ``heartbeat`` seconds from a thread (`start_heartbeat`) for the trials it asked and has
    not told (`mine`). A trial whose heartbeat stops is one whose driver died: another
    driver's resume fails only those (`dead_trials`).
    """

    def __init__(self, study_name: str, storage: optuna.storages.RDBStorage,
                 sampler: optuna.samplers.BaseSampler | None, heartbeat: int) -> None:
        super().__init__(study_name=study_name, storage=storage, sampler=sampler)
        self.rdb = storage
        self.heartbeat = heartbeat
        self.mine: dict[int, int] = {}  # trial number -> trial id, asked here and not told
        self._rdb_study_id = storage.get_study_id_from_name(study_name)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its searcher (and so this study) into its experiment state: no lock, no thread."""
        state = super().__getstate__()
        for key in ("_lock", "_stop", "_thread"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def ask(self, fixed_distributions: dict | None = None) -> optuna.Trial:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with")
            trial = super().ask(fixed_distributions)
        trial_id = self.trial_id(trial.number)
        self.rdb.record_heartbeat(trial_id)
        with self._lock:
            self.mine[trial.number] = trial_id
        return trial

    def tell(self, trial: optuna.Trial | int, values: Any = None, state: TrialState | None = None,
             skip_if_finished: bool = False) -> FrozenTrial:
        frozen = super().tell(trial, values, state=state, skip_if_finished=skip_if_finished)
        with self._lock:
            self.mine.pop(trial if isinstance(trial, int) else trial.number, None)
        return frozen

    def trial_id(self, number: int) -> int:
        return self.rdb.get_trial_id_from_study_id_trial_number(self._rdb_study_id, number)

    def start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="study-heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with self._lock:
                ids = list(self.mine.values())
            for trial_id in ids:
                try:
                    self.rdb.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001  (a database hiccup: the next beat tries again)
                    pass

    def stale_numbers(self) -> set[int]:
        """RUNNING trials whose heartbeat is older than the grace period.

        Optuna's public ``fail_stale_trials`` fails them at once, before a reason can be
        recorded on them (a finished trial's attrs are frozen), so this is the one place
        that calls the storage's private ``_get_stale_trial_ids``;
        tests/test_search_heartbeat.py fails loudly if an Optuna release drops it.
        """
        return {self.rdb.get_trial_number_from_id(i) for i in self.rdb._get_stale_trial_ids(self._rdb_study_id)}


def dead_trials(
    study: DriverStudy,
    log: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[int], list[int]]:
    """The RUNNING trials whose driver is dead, and those a live driver still runs.

    A trial whose heartbeat is already stale is dead. Any other RUNNING trial (a recent
    heartbeat, or none recorded) gets one heartbeat from here and is watched for the
    grace period: if no driver beats it again by then, it is dead too. So a resume right
    after a crash waits once, about ``3 * heartbeat`` seconds, and never fails a trial that
    a live driver elsewhere (a shared PostgreSQL study) is running.
    """
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return [], []
    stale = study.stale_numbers() & running
    unsure = running - stale
    if unsure:
        for number in unsure:
            study.rdb.record_heartbeat(study.trial_id(number))
        wait = GRACE_BEATS * study.heartbeat + 1
        log(f"resume: trials {_numbers(unsure)} are RUNNING with a recent heartbeat or none: waiting up to {wait} s "
            f"to see whether a live driver keeps them")
        deadline = clock() + wait
        while clock() < deadline and not unsure <= stale:
            time.sleep(min(1.0, study.heartbeat))
            stale = study.stale_numbers() & running
    still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    dead = sorted(stale & still)
    return dead, sorted(still - stale)


def recover_dead(study: DriverStudy, log: Callable[[str], None] = print) -> list[int]:
    """On resume: fail the trials of dead drivers and queue them again (`dead_trials`); returns their numbers."""
    dead, alive = dead_trials(study, log)
    recover_left_over(study, attrs.DRIVER_DIED, only=dead)
    if dead:
        log(f"resume: trials {_numbers(dead)} were left RUNNING by a dead driver: FAIL, queued again")
    if alive:
        log(f"resume: trials {_numbers(alive)} are run by a live driver: left to it")
    return dead


def target_trials(study: optuna.Study, requested: int, counted: int, log: Callable[[str], None] = print) -> int:
    """The searcher's target: ``requested``, or more when the queued (WAITING) trials exceed what is left,
    so that they are run rather than left behind (re-runs of cut-short trials, paper rows)."""
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    target = max(requested, counted + waiting)
    if target > requested:
        log(f"{waiting} queued trials (re-runs, paper rows) exceed the {max(requested - counted, 0)} left of "
            f"{requested}: running them all, {target} trials in the study")
    return target


def _numbers(numbers: set[int] | list[int]) -> str:
    return ", ".join(map(str, sorted(numbers)))


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
    # a field added since the study was created counts at its default (as the stored config meant it)
    was, now = flatten(to_dict(RunConfig())) | flatten(stored), flatten(to_dict(base))
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


def recover_left_over(study: optuna.Study, reason: str, only: list[int] | None = None) -> list[int]:
    """Fail trials left RUNNING (all, or those in ``only``) and queue their configs again; returns their numbers."""
    numbers = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if only is not None and frozen.number not in only:
            continue
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
