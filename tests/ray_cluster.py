"""A local Ray cluster of two nodes on this machine, for the scale-out tests, stopped by its own processes' ids.

``ray stop`` stops every Ray on the machine (another test run's, another user's), and
``ray start`` without ``--temp-dir`` records its address where ``--address auto`` of any
later search on the machine finds it. So the cluster gets a temp dir of its own, and this
process becomes a child subreaper while it starts the nodes: the daemons ``ray start``
leaves behind are reparented here, and the teardown kills exactly those (and their
workers), by pid. A worker node can be started in a private mount namespace with a folder
hidden under an empty read-only tmpfs: a node that cannot read (nor make) the data there.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
PR_SET_CHILD_SUBREAPER = 36
# The head prints the address workers join with ("ray start --address='IP:PORT'"); Ray
# keeps that line stable because its Java driver parses it too.
JOIN_LINE = re.compile(r"ray start --address='([^']+)'")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COMMON = ["--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats"]


def can_hide_folders() -> bool:
    """Whether this machine lets a process mount in a namespace of its own (root, or user namespaces)."""
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _run(cmd: list[str], env: dict) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return ANSI.sub("", proc.stdout + proc.stderr)


@contextlib.contextmanager
def local_cluster(env: dict, hide_on_worker: Path | None = None) -> Iterator[str]:
    """A head and one worker node (one CPU each) on 127.0.0.1; yields the address to join.

    ``hide_on_worker``: a folder the worker node's processes see empty and read-only. The
    temp dir is short (under /tmp): Ray's socket paths inside it must fit in 107 bytes.
    """
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    libc = ctypes.CDLL(None, use_errno=True)
    before = set(_descendants(os.getpid()))
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        head = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", "0", "--temp-dir", temp_dir,
                "--include-dashboard", "false", *COMMON]
        match = JOIN_LINE.search(_run(head, env))
        assert match, "no join address in the head's output"
        worker = [RAY, "start", "--address", match.group(1), "--node-ip-address", "127.0.0.1", *COMMON]
        if hide_on_worker is not None:
            worker = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"', "sh", str(hide_on_worker), *worker]
        _run(worker, env)
        yield match.group(1)
    finally:
        for _ in range(3):  # workers the raylets start while the first ones die
            mine = [p for p in _descendants(os.getpid()) if p not in before]
            for pid in mine:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in mine:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            time.sleep(0.5)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0)
        shutil.rmtree(temp_dir, ignore_errors=True)
