"""Optuna's heartbeat, kept by the driver: a resume fails and queues again only the trials of dead drivers.

Three drivers share one study: A is alive (its heartbeat thread beats its trial), B asked
a trial and died, and a trial asked without any heartbeat stands for a study from before
heartbeats. A resume (`recover_dead`) must fail B's and the old one, queue their configs
again, and leave A's RUNNING. Also exercises `DriverStudy.stale_numbers` (Optuna's private
``_get_stale_trial_ids``): fails loudly if an Optuna release drops it.
"""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from search import attrs, resume
from search.study import DIRECTIONS
from search.studydir import storage_for

pytestmark = pytest.mark.slow  # waits the grace period (3 s) on the wall clock

optuna.logging.set_verbosity(optuna.logging.WARNING)
BEAT = 1


def _driver(url: str) -> resume.DriverStudy:
    return resume.DriverStudy("shared", storage_for(url, heartbeat=BEAT, grace=resume.GRACE_BEATS * BEAT),
                                 None, BEAT)


def _ask(study: optuna.Study, x: float) -> int:
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("x", x)
    return trial.number


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


def test_resume_fails_only_the_trials_of_dead_drivers(url):
    optuna.create_study(study_name="shared", storage=url, directions=DIRECTIONS)
    old = _ask(optuna.load_study(study_name="shared", storage=url), 0.1)  # no heartbeat ever
    alive, dead = _driver(url), _driver(url)
    alive.start_heartbeat()
    try:
        a = _ask(alive, 0.2)
        b = _ask(dead, 0.3)  # one heartbeat at ask, then nothing: B died
        assert set(alive.mine) == {a} and set(dead.mine) == {b}
        resumer = _driver(url)
        lines: list[str] = []
        start = time.monotonic()
        assert resume.recover_dead(resumer, lines.append) == [old, b]
        waited = time.monotonic() - start
    finally:
        alive.stop_heartbeat()
    assert resume.GRACE_BEATS * BEAT <= waited < resume.GRACE_BEATS * BEAT + 5
    trials = {t.number: t for t in resumer.get_trials()}
    assert trials[a].state == TrialState.RUNNING  # the live driver's trial is left to it
    for n in (old, b):
        assert trials[n].state == TrialState.FAIL and trials[n].user_attrs[attrs.REASON] == attrs.DRIVER_DIED
    queued = {t.user_attrs[attrs.RETRY_OF]: t for t in trials.values() if t.state == TrialState.WAITING}
    assert set(queued) == {old, b}
    rerun = [resumer.ask().suggest_float("x", 0.0, 1.0) for _ in queued]  # their configs, asked again
    assert rerun == [trials[old].params["x"], trials[b].params["x"]]
    assert lines[-2:] == [f"resume: trials {old}, {b} were left RUNNING by a dead driver: FAIL, queued again",
                          f"resume: trials {a} are run by a live driver: left to it"]
    # The live driver tells its trial as usual, and it leaves the driver's list.
    alive.tell(a, [0.5, 1.0])
    assert not alive.mine and alive.trials[a].state == TrialState.COMPLETE


def test_a_stale_heartbeat_needs_no_wait(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="shared", storage=url, directions=DIRECTIONS)
    number = _ask(_driver(url), 0.3)
    time.sleep(resume.GRACE_BEATS * BEAT + 1.5)  # the dead driver's last beat is past the grace period
    start = time.monotonic()
    assert resume.recover_dead(_driver(url), lambda line: None) == [number]
    assert time.monotonic() - start < 1.5


def test_driver_study_pickles_without_its_thread(tmp_path):
    """Tune pickles its searcher (with Ray's cloudpickle), and the searcher holds this study."""
    from ray import cloudpickle

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="shared", storage=url, directions=DIRECTIONS)
    study = _driver(url)
    study.start_heartbeat()
    try:
        copy = cloudpickle.loads(cloudpickle.dumps(study))
    finally:
        study.stop_heartbeat()
    assert copy.study_name == "shared" and copy.heartbeat == BEAT and copy.mine == {}
