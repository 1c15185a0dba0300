"""Scale-out: a two-node Ray cluster on 127.0.0.1 runs a search started with ``--address``.

Each node offers one CPU and a trial needs one, so two trials at once can only run on two
nodes: Ray places them by resources, the driver just asks (after its pre-flight checked
the other node: `search.nodes`). Each trial records the id of the node it trained on.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from ray_cluster import local_cluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cluster_env():
    """Token auth on, with a token of this test's own, shared by the nodes and the driver."""
    return {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture
def cluster(cluster_env):
    with local_cluster(cluster_env) as address:  # stopped by its own pids: never `ray stop`, which stops every Ray
        yield address


def test_search_runs_trials_on_both_nodes(cluster, cluster_env, tmp_path, small_demo_root):
    spec = yaml.safe_load((REPO / "studies" / "demo.yaml").read_text())
    spec.update(image_size=32, epochs=1, trials=6, concurrency=2, budget=1.0, data_root=str(small_demo_root),
                study_dir=str(tmp_path / "study"), name="cluster", confirm=None)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    proc = subprocess.run([sys.executable, "-m", "search.run", "--spec", str(spec_path), "--address", cluster],
                          cwd=REPO, env=cluster_env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    study = optuna.load_study(study_name="cluster", storage=f"sqlite:///{tmp_path / 'study' / 'optuna.db'}")
    trials = study.get_trials()
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)  # budget 1.0: none over
    nodes = {t.user_attrs["node_id"] for t in trials}
    assert len(nodes) == 2, nodes
