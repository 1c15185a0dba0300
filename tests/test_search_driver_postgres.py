"""A search against a real PostgreSQL server (the suite's own, tests/pg_server.py), killed and resumed.

The study starts as a SIGKILL during setup would leave it (one attr, one paper row, no
``setup_complete``); ``--resume`` completes the setup (3 trials < the paper's rows: the
rest are dropped, and it says so), runs, and is SIGKILLed with a trial mid-training. The
next ``--resume`` fails the orphans, whose heartbeat stopped ("driver died"), runs their
configs again and ends with the requested count, nothing left WAITING. Then
optuna-dashboard, on the same server in headless Chromium, shows the objectives' names
and a trial's learning curve.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from processes import kill_group, sigkill_driver_when, start_module

from search import attrs
from search import spec as spec_mod
from search import study as study_mod
from search.searcher import counted_trials

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NAME = "pg"
TRIALS = 3


def _driver(args: list[str], log: Path) -> subprocess.Popen:
    return start_module("search.run", args, log)


def test_search_on_postgres_killed_and_resumed(tmp_path, small_demo_root, postgres_url):
    spec_dict = yaml.safe_load((REPO / "studies" / "demo.yaml").read_text())
    spec_dict.update(image_size=32, epochs=2, trials=TRIALS, concurrency=2, grace_period=1, reduction_factor=2,
                     heartbeat=1, data_root=str(small_demo_root), study_dir=str(tmp_path / "study"), name=NAME,
                     storage=postgres_url, confirm=None)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict))
    spec = spec_mod.load(spec_path)
    import spaces

    rows = spaces.paper_rows(spec.space, spec.base_config())
    assert len(rows) > TRIALS

    # A setup cut short: the study, one attr, one paper row queued, no setup_complete.
    cut = study_mod.open_for_search(spec, postgres_url, resume=False)
    cut.set_user_attr("task", spec.task)
    study_mod.enqueue_paper_rows(cut, rows[:1], limit=TRIALS)

    first_log = tmp_path / "first.log"
    proc = _driver(["--spec", str(spec_path), "--resume"], first_log)

    def mid_training_with_another_finished() -> bool:
        trials = optuna.load_study(study_name=NAME, storage=postgres_url).get_trials()
        mid = [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get(attrs.CURVE)]
        return bool(mid) and any(t.state.is_finished() for t in trials)

    sigkill_driver_when(proc, mid_training_with_another_finished, first_log,
                        "no trial was mid-training with another finished", timeout=400)
    log = first_log.read_text()
    assert "resume: the study's setup had been cut short" in log
    dropped = ", ".join(label for label, _ in rows[TRIALS:])
    assert f"trials {TRIALS} < the paper's {len(rows)} rows: not queued: {dropped}" in log

    study = optuna.load_study(study_name=NAME, storage=postgres_url)
    orphans = {t.number for t in study.get_trials(states=(TrialState.RUNNING,))}
    assert orphans, "the SIGKILL left no trial RUNNING:\n" + log[-3000:]
    finished = {t.number: t.state for t in study.get_trials() if t.state.is_finished()}

    resume_log = tmp_path / "resume.log"
    proc = _driver(["--spec", str(spec_path), "--resume"], resume_log)
    try:
        assert proc.wait(timeout=400) == 0, resume_log.read_text()[-3000:]
    finally:
        kill_group(proc)
    log = resume_log.read_text()
    assert "were left RUNNING by a dead driver: FAIL, queued again" in log

    study = optuna.load_study(study_name=NAME, storage=postgres_url)
    trials = {t.number: t for t in study.get_trials()}
    assert not [t for t in trials.values() if not t.state.is_finished()]  # nothing RUNNING, nothing WAITING
    died = {n for n, t in trials.items() if t.user_attrs.get(attrs.REASON) == attrs.DRIVER_DIED}
    assert died == orphans
    retried = {t.user_attrs[attrs.RETRY_OF]: t for t in trials.values() if attrs.RETRY_OF in t.user_attrs}
    assert set(retried) == died
    for n in died:  # a kill between two suggest calls leaves some params: the retry keeps them and its queued ones
        queued = trials[n].system_attrs.get("fixed_params", {})
        assert trials[n].params.items() <= retried[n].params.items()
        assert all(retried[n].params[k] == v for k, v in queued.items() if k in retried[n].params)
    assert all(trials[n].state == state for n, state in finished.items())
    assert counted_trials(study) == TRIALS
    assert sorted(t.user_attrs[attrs.PAPER_ROW] for t in trials.values()
                  if attrs.PAPER_ROW in t.user_attrs and attrs.RETRY_OF not in t.user_attrs) == \
        sorted(r for r, _ in rows[:TRIALS])
    assert study.user_attrs[attrs.SETUP_COMPLETE] is True and attrs.BASELINE_GFLOPS in study.user_attrs
    assert study.metric_names == ["val_top1", "gflops"]

    if shutil.which("chromium") is None and not os.environ.get("CI"):
        return  # the browser check needs `make sysdeps` (tests/test_tools_dashboard_screenshot.py skips too)
    shot = subprocess.run([sys.executable, "tools/dashboard_screenshot.py", postgres_url, "--name", NAME,
                           "--out", str(tmp_path / "shots")], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert shot.returncode == 0, shot.stdout + shot.stderr
    assert "val_top1 per epoch" in (tmp_path / "shots" / "trial.txt").read_text()
