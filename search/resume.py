"""Resume: what a killed search or confirmation leaves behind, and how the next run picks it up.

What a killed driver leaves. The study lives in its storage (SQLite or a server), so every
trial told before the kill keeps its state, values and curve. Ray's trial processes die
with the driver (fate-shared), and a search trial keeps no checkpoint, so the trials Ray
was running are lost mid-training: their records stay RUNNING. So may a setup cut short
(no ``setup_complete`` attr: `search.study.complete_setup` redoes it) and queued (WAITING)
paper rows or re-runs, which are simply asked later. Ray's own experiment folder is never
restored from: the study is the state.

What ``--resume`` does (`search.driver.run_search`). The study must exist and match the
spec and base config it was created with, complete trials the same epochs (`check_resume`; only
`fgmodel.config.RESUME_FREE_KEYS`, where the data is and how it is read, may differ). A
search driver holds its study as a `DriverStudy`, which keeps an Optuna heartbeat on every
trial it asked and has not told; so `recover_dead` fails ("driver died") only the RUNNING
trials whose heartbeat stopped, never those of a driver still alive elsewhere on a shared
PostgreSQL study, and queues their params again (`requeue`: ``retry_of``, and
``paper_row`` kept so the row is still never stopped). Trials the driver cut short do not
count (`search.trials.counted`), so the search runs the remaining count, re-runs first;
the sampler is reseeded (`search.study.open_for_search`), and the scheduler's rungs are
refilled from the finished trials' curves (`search.moasha.rung_curves`), so new trials
are judged against what the study already ran. Ctrl-C is the same story told by a live
driver: the searcher fails its running trials ("interrupted", `StudySearcher.fail_live`)
and the driver queues them and any trial it asked but had not handed to Ray
(`recover_left_over`).

The confirmation (`search.confirm`) resumes by being run again: a (trial, seed) pair with a
COMPLETE record, or a FAIL from a non-finite loss, is kept (`search.confirmed.progress`); a
record left RUNNING by a killed process is failed ("driver died", `fail_left_running`) and
run again. It keeps no heartbeat: one confirmation runs on a study at a time.

Final training resumes elsewhere, per run rather than per study: ``python -m fgmodel.train
--resume`` continues ``last.pt`` (`fgmodel.fit.fit`), bit for bit on CPU, under the same
config but for the same free keys and the epoch count.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from fgmodel.config import RESUME_FREE_KEYS, ConfigError, RunConfig, flatten, to_dict
from search import attrs
from search.spec import StudySpec

# Spec fields whose change would make a resumed study mix incomparable trials (the
# ``config:`` overrides and the effective pretrained weights are held fixed through the
# stored base config, see check_resume).
FIXED_ON_RESUME = ("task", "base", "backbone", "image_size", "epochs", "budget", "space", "seed")
GRACE_BEATS = 3  # a RUNNING trial whose heartbeat is older than 3 intervals has a dead driver


def check_resume(study_attrs: dict[str, Any], spec: StudySpec, base: RunConfig) -> None:
    """Refuse a resume whose spec or base config differs from the study's (`ConfigError` naming the field)."""
    for key in FIXED_ON_RESUME:
        was = study_attrs.get(key)
        now = getattr(spec, key)
        if was is not None and was != now:
            raise ConfigError(key, f"the study was created with {was!r}, not {now!r}; "
                                   f"resume with the same value or start a new --name")
    # a study made before the dead-tail cut trained every epoch
    was, now = study_attrs.get(attrs.TRAINED_EPOCHS, study_attrs.get("epochs")), spec.trained_epochs(base)
    if was is not None and was != now:
        raise ConfigError("dead_lr_fraction", f"the study's complete trials trained {was} epochs, this spec's "
                                              f"would train {now}; resume with the same dead_lr_fraction "
                                              f"(--dead-lr-fraction off: every epoch) or a new --name")
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
        tests/test_search_resume_heartbeat.py fails loudly if an Optuna release drops it.
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


def recover_left_over(study: optuna.Study, reason: str, only: list[int] | None = None) -> list[int]:
    """Fail trials left RUNNING (all, or those in ``only``) and queue their configs again; returns their numbers."""
    numbers = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if only is not None and frozen.number not in only:
            continue
        _fail(study, frozen, reason)
        requeue(study, [frozen.number])
        numbers.append(frozen.number)
    return numbers


def recover_interrupted(study: DriverStudy, failed: list[int]) -> None:
    """After Ctrl-C: queue again the trials the searcher failed ("interrupted"), and fail and queue
    those this driver asked but had not handed to Ray yet."""
    requeue(study, failed)
    recover_left_over(study, attrs.INTERRUPTED, only=list(study.mine))


def requeue(study: optuna.Study, numbers: list[int]) -> None:
    """Queue the configs of trials the driver cut short, so a resumed search runs them again.

    A queued trial (a paper row, a retry) keeps its whole queued config: a driver killed
    while the searcher set its params one by one leaves only some of them on the record,
    and the rest would be drawn anew under the paper row's name. Optuna keeps the queued
    params in ``system_attrs["fixed_params"]`` (as its own ``enqueue_trial`` reads them).
    """
    for number in numbers:
        frozen = study.trials[number]
        params = {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}
        if params:
            queued = {attrs.RETRY_OF: number}
            if attrs.PAPER_ROW in frozen.user_attrs:
                queued[attrs.PAPER_ROW] = frozen.user_attrs[attrs.PAPER_ROW]
            study.enqueue_trial(params, user_attrs=queued)


def reopen(study: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """A writable handle on a trial another process asked (to record why it is failed).

    Optuna has no public way to reopen a trial by number: this is the one place that
    reads the private ``FrozenTrial._trial_id``; tests/test_search_resume.py fails loudly
    if an Optuna release drops it.
    """
    return optuna.Trial(study, frozen._trial_id)


def fail_left_running(confirm: optuna.Study, numbers: Sequence[int], reason: str = attrs.DRIVER_DIED) -> None:
    """Fail the confirm records ``numbers`` left RUNNING by a dead process (their runs are planned again)."""
    for frozen in confirm.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number in numbers:
            _fail(confirm, frozen, reason)


def _fail(study: optuna.Study, frozen: FrozenTrial, reason: str) -> None:
    reopen(study, frozen).set_user_attr(attrs.REASON, reason)
    study.tell(frozen.number, state=TrialState.FAIL)


def _numbers(numbers: set[int] | list[int]) -> str:
    return ", ".join(map(str, sorted(numbers)))
