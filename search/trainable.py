"""The Ray Tune trainable: replay the space's params into a RunConfig, fit, report each epoch.

A trial is nothing more than ``fgmodel.train.fit`` with a callback that forwards each
epoch to ``tune.report``; Tune's scheduler (ASHA) decides after each report whether the
trial goes on. What the driver needs to record the trial honestly rides in the reports:
the epoch, the seconds spent training and evaluating, the node, and on the way out a
non-finite status or the exception's line (reported just before it is re-raised, so the
study gets the error while Ray still sees the failure and applies its retries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray
from ray import tune

import spaces
from fgmodel.config import RunConfig, from_dict
from search.searcher import error_line


def train_trial(config: dict[str, Any], *, space: str, base: dict[str, Any]) -> None:
    """Ray function trainable; ``config`` is ``{"params": ..., "number": ...}`` from the searcher."""
    train_config(lambda: spaces.config_from_params(space, config["params"], from_dict(base)))


def train_config(make_config: Callable[[], RunConfig]) -> None:
    """Fit the config ``make_config`` builds, reporting each epoch to Tune (search.confirm's runs use it directly).

    The config is built inside, so an error building it is reported like one in training.
    """
    import torch

    from fgmodel.fit import fit

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    node_id = ray.get_runtime_context().get_node_id()
    totals = {"train_seconds": 0.0}

    def report(epoch: Any) -> None:
        totals["train_seconds"] += float(epoch.seconds)
        tune.report({**epoch.to_dict(), **totals, "node_id": node_id})

    try:
        result = fit(make_config(), report)
    except Exception as exc:
        tune.report({"error": error_line(exc), "node_id": node_id})
        raise
    if result.status == "non_finite":
        tune.report({"status": "non_finite", "reason": result.reason, "node_id": node_id})
