"""Every Ray node that may run a trial can train it: its data, its weights file and its cache folder.

A trial's config holds paths (``data.root``, a pretrained ``.safetensors``, ``data.cache_dir``)
that the driver checked on its own machine; on a cluster each node reads them as they are,
so a node without the data would fail its trials one by one, hours into a search. The
pre-flight (`check_nodes`, called by `search.driver.run_search` once Ray is up) runs one
small Ray task pinned to each other node that fits a trial, and refuses the search with
one line naming the first node that lacks something. What a node needs (`node_problems`)
is a plain function of the config, run the same way on every node.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fgmodel.cli import one_line
from fgmodel.config import RunConfig, from_dict, to_dict

CHECK_TIMEOUT_S = 120.0  # a node's first task starts a Ray worker there: seconds, unless the node is stuck
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


class NodeCannotTrain(ValueError):
    """A node that may run a trial lacks what the trial reads (one line: the node and what it lacks)."""


def node_problems(base: RunConfig) -> list[str]:
    """What this machine lacks to train ``base``: the data's index files (and its first and last image), the
    pretrained weights file, a writable pixel-cache folder. Empty when nothing."""
    from fgmodel.data import load_task

    problems = []
    try:
        data = load_task(base.data.task, base.data.root)
        for sample in (data.train[:1] + data.train[-1:]):
            if not Path(sample.path).is_file():
                problems.append(f"data: no image {sample.path}")
                break
    except Exception as exc:  # noqa: BLE001  (any reason the index cannot be read is the node's answer)
        problems.append(f"data: {one_line(exc)}")
    weights = base.model.pretrained
    if (weights.lower().endswith(_WEIGHT_SUFFIXES) or os.sep in weights or "/" in weights) \
            and not Path(weights).is_file():
        problems.append(f"weights: no file {weights}")
    cache = base.data.cache_dir
    if cache is not None and not (Path(cache).is_dir() and os.access(cache, os.W_OK | os.X_OK)):
        problems.append(f"pixel cache: no writable folder {cache}")
    return problems


def _check_here(config: dict[str, Any]) -> list[str]:
    return node_problems(from_dict(config))


def trial_nodes(nodes: Sequence[Mapping[str, Any]], cpus: float, gpus: float) -> list[Mapping[str, Any]]:
    """The alive nodes (``ray.nodes()`` entries) with the resources of one trial."""
    def fits(resources: Mapping[str, float]) -> bool:
        return resources.get("CPU", 0.0) >= cpus and (gpus <= 0 or resources.get("GPU", 0.0) >= gpus)

    return [n for n in nodes if n.get("Alive") and fits(n.get("Resources", {}))]


def verdict(problems: Mapping[str, list[str]], names: Mapping[str, str]) -> str | None:
    """The one line refusing the search (None when every node can train): the first node's problems, and how
    many nodes have any."""
    bad = [(node, p) for node, p in problems.items() if p]
    if not bad:
        return None
    node, first = bad[0]
    more = f"; {len(bad) - 1} more of the {len(problems)} nodes checked lack something" if len(bad) > 1 else ""
    return (f"node {names.get(node, node)} cannot train the trials: {'; '.join(first)}{more} (each node reads the "
            f"config's paths as they are: give it the data, or leave it out of the cluster)")


def check_nodes(base: RunConfig, cpus: float, gpus: float) -> int:
    """Run `node_problems` on every other Ray node that fits a trial; `NodeCannotTrain` naming one that lacks
    something. The driver's own node was checked by the pre-flight itself. Returns the nodes checked."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    others = [n for n in trial_nodes(ray.nodes(), cpus, gpus) if n["NodeID"] != here]
    if not others:
        return 0
    task = ray.remote(num_cpus=0, max_retries=0)(_check_here)
    config = to_dict(base)
    refs = {n["NodeID"]: task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(config) for n in others}
    names = {n["NodeID"]: f"{n.get('NodeManagerAddress', '?')} ({n['NodeID'][:8]})" for n in others}
    problems = {}
    for node, ref in refs.items():
        try:
            problems[node] = ray.get(ref, timeout=CHECK_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001  (a node that cannot even run the check cannot run a trial)
            problems[node] = [f"the check failed there: {one_line(exc)}"]
    line = verdict(problems, names)
    if line:
        raise NodeCannotTrain(line)
    return len(others)
