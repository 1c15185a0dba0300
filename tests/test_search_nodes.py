"""search.nodes: what a node needs to train (its data, weights file, cache folder), and the pre-flight that
names a node of a two-node Ray cluster that cannot read the data."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ray_cluster import can_hide_folders, local_cluster

from fgmodel.config import RunConfig
from search.nodes import node_problems, trial_nodes, verdict

REPO = Path(__file__).resolve().parent.parent


def _base(root: Path, **changes) -> RunConfig:
    return RunConfig().replace(**{"data.task": "demo", "data.root": str(root), **changes})


def test_a_node_with_everything_has_no_problem(small_demo_root, tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    assert node_problems(_base(small_demo_root, **{"model.pretrained": str(weights),
                                                  "data.cache_dir": str(tmp_path)})) == []
    assert node_problems(_base(small_demo_root, **{"model.pretrained": "convnextv2_atto.fcmae"})) == []  # a hub tag


def test_what_a_node_lacks_is_named(tmp_path):
    base = _base(tmp_path, **{"data.task": "cub", "model.pretrained": str(tmp_path / "w.safetensors"),
                              "data.cache_dir": str(tmp_path / "cache")})
    problems = node_problems(base)
    assert [p.split(":")[0] for p in problems] == ["data", "weights", "pixel cache"]
    assert "images.txt" in problems[0] and problems[1] == f"weights: no file {tmp_path / 'w.safetensors'}"


def test_trial_nodes_are_the_alive_ones_that_fit_a_trial():
    nodes = [{"NodeID": "a", "Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}},
             {"NodeID": "b", "Alive": True, "Resources": {"CPU": 8.0}},
             {"NodeID": "c", "Alive": False, "Resources": {"CPU": 8.0, "GPU": 1.0}}]
    assert [n["NodeID"] for n in trial_nodes(nodes, cpus=4, gpus=1)] == ["a"]
    assert [n["NodeID"] for n in trial_nodes(nodes, cpus=4, gpus=0)] == ["a", "b"]


def test_verdict_names_the_first_node_and_counts_the_rest():
    assert verdict({"a": [], "b": []}, {}) is None
    line = verdict({"a": [], "b": ["data: no x", "weights: no file w"], "c": ["data: no x"]}, {"b": "10.0.0.2 (b)"})
    assert line.startswith("node 10.0.0.2 (b) cannot train the trials: data: no x; weights: no file w; 1 more of "
                           "the 3 nodes checked lack something")


@pytest.mark.slow
@pytest.mark.skipif(not can_hide_folders(), reason="needs mount namespaces (unshare --mount) to hide the data")
def test_the_search_names_the_node_that_cannot_read_the_data(tmp_path, small_demo_root):
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    spec = yaml.safe_load((REPO / "studies" / "demo.yaml").read_text())
    spec.update(image_size=32, epochs=1, trials=2, concurrency=2, budget=1.0, data_root=str(small_demo_root),
                study_dir=str(tmp_path / "study"), name="nodes", confirm=None)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    # the worker node sees the data folder empty and read-only: it can neither read the demo nor make it
    with local_cluster(env, hide_on_worker=small_demo_root) as address:
        proc = subprocess.run([sys.executable, "-m", "search.run", "--spec", str(path), "--address", address],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    err = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert err.startswith("error: node ") and " cannot train the trials: data: " in err, err
    assert "Read-only file system" in err and str(small_demo_root) in err
    assert not (tmp_path / "study" / "optuna.db").exists()  # refused in the pre-flight, before the study
