"""Readers during a live search, then SIGKILL of the driver and ``--resume``.

The driver runs as `python -m search.run` in a subprocess on the demo data (32 px) while
this test reads the same SQLite study through `optuna.load_study` and through
optuna-dashboard's HTTP API (served on 127.0.0.1 from a thread). Once a trial is mid-
training, the driver gets SIGKILL; ``--resume`` must fail the orphaned RUNNING trials,
run their configs again, keep every finished trial and reach the requested count.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from processes import kill_group, sigkill_driver, start_module, wait_until

from search.attrs import DRIVER_DIED
from search.searcher import counted_trials

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NAME = "killed"
TRIALS = 6


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def dashboard(storage_url: str):
    """optuna-dashboard's WSGI app on a free 127.0.0.1 port; yields a GET-JSON function."""
    import optuna_dashboard

    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage_url), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"

    def get(path: str):
        with urllib.request.urlopen(base + path, timeout=30) as response:
            return json.loads(response.read())

    try:
        yield get
    finally:
        server.shutdown()


def _spec_file(tmp_path: Path, small_demo_root: Path) -> Path:
    spec = yaml.safe_load((REPO / "studies" / "demo.yaml").read_text())
    spec.update(image_size=32, epochs=3, trials=TRIALS, concurrency=2, grace_period=1, reduction_factor=2,
                heartbeat=1, data_root=str(small_demo_root), study_dir=str(tmp_path / "study"), name=NAME, confirm=None)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _driver(args: list[str], log: Path) -> subprocess.Popen:
    return start_module("search.run", args, log)


def test_readers_during_search_then_sigkill_and_resume(tmp_path, small_demo_root):
    spec_path = _spec_file(tmp_path, small_demo_root)
    url = f"sqlite:///{tmp_path / 'study' / 'optuna.db'}"
    proc = _driver(["--spec", str(spec_path)], tmp_path / "first.log")
    seen: dict = {}

    def mid_training_with_another_finished() -> bool:
        if not (tmp_path / "study" / "study.json").exists():
            return False
        try:
            study = optuna.load_study(study_name=NAME, storage=url)
        except Exception:  # noqa: BLE001  (the study or its tables not written yet)
            return False
        trials = study.get_trials()
        mid = [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get("curve")]
        finished = {t.number: t.state.name for t in trials if t.state.is_finished()}
        if mid and finished:
            seen["load_study"] = mid[0]
            seen["finished"] = finished
        return bool(seen)

    try:
        wait_until(proc, mid_training_with_another_finished, tmp_path / "first.log",
                   "no trial was mid-training with another finished", timeout=240)
        with dashboard(url) as get:
            (summary,) = [s for s in get("/api/studies")["study_summaries"] if s["study_name"] == NAME]
            detail = get(f"/api/studies/{summary['study_id']}")
        sigkill_driver(proc)
    finally:
        kill_group(proc)

    # What the readers saw while the driver wrote.
    running = seen["load_study"]
    assert {"gflops", "params", "config", "curve", "epochs_run"} <= set(running.user_attrs)
    by_number = {t["number"]: t for t in detail["trials"]}
    assert len(by_number) >= len(seen["finished"]) + 1
    dash_trial = by_number[running.number]
    assert {a["key"] for a in dash_trial["user_attrs"]} >= {"gflops", "params", "config", "curve"}
    assert detail["directions"] == ["maximize", "minimize"]
    assert {a["key"] for a in detail["user_attrs"]} >= {"task", "budget", "baseline_gflops", "backbone"}

    # The trials the kill left RUNNING, read after the kill: the one seen mid-training may
    # have finished (or been cut by ASHA) before the signal landed, another one not.
    study = optuna.load_study(study_name=NAME, storage=url)
    orphans = {t.number for t in study.get_trials(states=(TrialState.RUNNING,))}
    assert orphans, "the SIGKILL left no trial RUNNING:\n" + (tmp_path / "first.log").read_text()[-3000:]

    # Without --resume the study is not touched.
    again = subprocess.run([sys.executable, "-m", "search.run", "--spec", str(spec_path)], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--resume" in again.stderr.strip().splitlines()[-1]

    proc = _driver(["--spec", str(spec_path), "--resume"], tmp_path / "resume.log")
    try:
        assert proc.wait(timeout=300) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    finally:
        kill_group(proc)

    study = optuna.load_study(study_name=NAME, storage=url)
    trials = {t.number: t for t in study.get_trials()}
    assert not [t for t in trials.values() if not t.state.is_finished()]
    died = {n for n, t in trials.items() if t.user_attrs.get("reason") == DRIVER_DIED}
    assert died == orphans and all(trials[n].state == TrialState.FAIL for n in died)
    retried = {t.user_attrs["retry_of"]: t for t in trials.values() if "retry_of" in t.user_attrs}
    assert set(retried) == died
    for n in died:
        assert retried[n].params == trials[n].params
    for n, state in seen["finished"].items():  # finished trials are kept as they were
        assert trials[n].state.name == state
    assert counted_trials(study) == TRIALS
    log = (tmp_path / "resume.log").read_text()
    assert "left RUNNING by a dead driver" in log and "pareto.html" in log
