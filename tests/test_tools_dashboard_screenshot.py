"""tools/dashboard_screenshot.py: what optuna-dashboard shows in a real (headless) browser.

A study written through search.dashboard (names, a curve note) is opened in Chromium; the
rendered pages must show the objectives' names and the trial's curve. The same study
without them must make the tool say what is missing (so the check can fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.dashboard import name_objectives, show_curve

pytestmark = pytest.mark.slow

TOOL = Path(__file__).resolve().parent.parent / "tools" / "dashboard_screenshot.py"


@pytest.fixture(scope="module")
def chromium():
    if shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium (make sysdeps)")
        pytest.skip("no chromium: `make sysdeps` installs Debian's chromium")


def _study(storage: str, name: str, named: bool) -> None:
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
    if named:
        name_objectives(study)
    study.tell(study.ask(), [0.5, 1.0])
    trial = study.ask()  # still RUNNING, as during a search; the tool picks it: the first with a curve
    trial.set_user_attr("curve", [0.25, 0.5, 0.625])
    if named:
        show_curve(trial, [0.25, 0.5, 0.625], epochs=4)


def _tool(storage: str, name: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), storage, "--name", name, "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=300)


def test_dashboard_shows_names_and_curve(tmp_path, chromium):
    storage = f"sqlite:///{tmp_path / 'd.db'}"
    _study(storage, "named", named=True)
    _study(storage, "bare", named=False)

    done = _tool(storage, "named", tmp_path / "named")
    assert done.returncode == 0, done.stdout + done.stderr
    study_text = (tmp_path / "named" / "study.txt").read_text()
    assert "Objective X: val_top1" in study_text and "Objective Y: gflops" in study_text
    assert "Objective 0" not in study_text
    trial_text = (tmp_path / "named" / "trial.txt").read_text()
    assert "Trial 1 (trial_id=" in trial_text  # the trial with the curve, not trial 0
    assert "val_top1 per epoch (3 of 4 epochs run)" in trial_text
    assert "▁▆█ last 0.6250, best 0.6250 at epoch 3" in trial_text  # (0.5-0.25)/0.375 of 7 steps: 4.67 -> 5
    assert "3 0.6250" in trial_text  # the table's last row
    for png in ("study.png", "trial.png"):
        data = (tmp_path / "named" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one

    done = _tool(storage, "bare", tmp_path / "bare")
    assert done.returncode == 1
    assert "Objective 0" in (tmp_path / "bare" / "study.txt").read_text()
    assert "objective name 'val_top1'" in done.stderr and "learning curve" in done.stderr

    done = _tool(storage, "nope", tmp_path / "nope")
    assert done.returncode == 2 and "no study 'nope'" in done.stderr and "bare" in done.stderr
