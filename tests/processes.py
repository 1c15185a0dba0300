"""Driver processes for the kill-and-resume tests: started in their own session, killed as a group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def start_module(module: str, args: list[str], log: Path) -> subprocess.Popen:
    """``python -m module args`` from the repo, output unbuffered into ``log``, in a new session."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (its Ray workers); a finished one is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], log: Path, what: str, timeout: float) -> None:
    """Poll ``ready`` every 0.5 s while ``proc`` runs; fail with ``what`` and the log's tail if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if ready():
            return
    pytest.fail(f"{what}:\n" + log.read_text()[-3000:])


def sigkill_driver(proc: subprocess.Popen) -> None:
    """SIGKILL the driver only, as a crash would: its Ray processes are fate-shared."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def sigkill_driver_when(proc: subprocess.Popen, ready: Callable[[], bool], log: Path, what: str,
                        timeout: float) -> None:
    """`wait_until` ``ready``, then `sigkill_driver`; whatever happens, nothing of ``proc`` is left running."""
    try:
        wait_until(proc, ready, log, what, timeout)
        sigkill_driver(proc)
    finally:
        kill_group(proc)
