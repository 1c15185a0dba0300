"""--address: settled and probed before Ray is asked (Ray itself retries an unreachable GCS for minutes);
``concurrency: auto`` and ``cpus_per_trial: auto`` settled on the nodes' resources."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fgmodel.config import ConfigError
from search.tuner import auto_resources, probe, resolve_address

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_ray_env(monkeypatch, tmp_path):
    """No RAY_ADDRESS, and Ray's temp dir (where `ray start` records its cluster) empty."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    return tmp_path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_and_host_port(no_ray_env, monkeypatch):
    assert resolve_address(None) is None
    assert resolve_address("local") is None
    assert resolve_address("10.0.0.5:6379") == "10.0.0.5:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6380")  # ray.init(address=None) would join it: so do we
    assert resolve_address(None) == "10.0.0.7:6380"


def test_auto_reads_what_ray_start_recorded(no_ray_env, monkeypatch):
    with pytest.raises(ConfigError, match="^address: auto: no Ray cluster was started on this machine"):
        resolve_address("auto")
    (no_ray_env / "ray").mkdir()
    (no_ray_env / "ray" / "ray_current_cluster").write_text("192.0.2.9:6379\n")
    assert resolve_address("auto") == "192.0.2.9:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6380")
    assert resolve_address("auto") == "10.0.0.7:6380"


@pytest.mark.parametrize("address", ["head", "head:port", ":6379", "http://head:8265x"])
def test_malformed_address_is_one_line(no_ray_env, address):
    with pytest.raises(ConfigError) as info:
        resolve_address(address)
    assert info.value.field == "address" and "HOST:PORT" in str(info.value) and "\n" not in str(info.value)


def test_ray_client_address_is_refused_with_what_to_use(no_ray_env):
    with pytest.raises(ConfigError) as info:
        resolve_address("ray://head:10001")
    message = str(info.value)
    assert "Ray Client" in message and "--address HEAD:6379" in message and "\n" not in message


def test_probe_fails_in_milliseconds_on_a_closed_port_and_passes_an_open_one():
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"^cannot reach the Ray cluster at 127.0.0.1:{port} "):
        probe(f"127.0.0.1:{port}")
    assert time.monotonic() - start < 2
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe(f"127.0.0.1:{server.getsockname()[1]}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("address", "expect"),
    [("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"), ("ray://127.0.0.1:10001", "Ray Client")],
)
def test_cli_fails_fast_and_writes_nothing(tmp_path, address, expect):
    study_dir = tmp_path / "study"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "search.run", "--task", "demo", "--address", address, "--study-dir", str(study_dir),
         "--data-root", str(tmp_path / "data")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    assert elapsed < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0]
    assert not study_dir.exists() and not (tmp_path / "data").exists()  # checked before the data and the study


NODE_8_GPUS = {"CPU": 64.0, "GPU": 8.0}


@pytest.mark.parametrize(
    ("nodes", "concurrency", "cpus", "gpus", "expected"),
    [
        ([NODE_8_GPUS], "auto", "auto", 1.0, (8, 8.0)),  # every GPU, the cores shared out
        ([NODE_8_GPUS], "auto", 4.0, 1.0, (8, 4.0)),
        ([NODE_8_GPUS], "auto", 16.0, 1.0, (4, 16.0)),  # the cores run out first
        ([NODE_8_GPUS], "auto", "auto", 0.5, (16, 4.0)),  # two trials per GPU
        ([NODE_8_GPUS], 3, "auto", 1.0, (3, 8.0)),
        ([NODE_8_GPUS, {"CPU": 16.0, "GPU": 4.0}], "auto", "auto", 1.0, (12, 4.0)),  # the smaller share: both fill
        ([NODE_8_GPUS, {"CPU": 32.0}], "auto", "auto", 1.0, (8, 8.0)),  # a CPU-only node runs no GPU trial
        ([{"CPU": 2.0}], "auto", "auto", 0.0, (2, 1.0)),  # CPU trials: one core each
        ([{"CPU": 16.0}], 2, "auto", 0.0, (2, 8.0)),
        ([{"CPU": 16.0}], "auto", 4.0, 0.0, (4, 4.0)),
        ([{"CPU": 8.0}], "auto", "auto", 1.0, (1, 1.0)),  # no GPU: one slot; check_resources refuses the trial
    ],
)
def test_auto_resources(nodes, concurrency, cpus, gpus, expected):
    assert auto_resources(nodes, concurrency, cpus, gpus) == expected
