"""The Ray Tune trainable of every trial, searched or confirmed: fit the finished config, report each epoch.

The driver settles a trial's config before Ray sees it (the searcher replays the space and
measures the config's FLOPs; the confirmation reseeds a search trial's config), and ships
that very dict in the trial's Ray config (`trial_config`): the worker trains what the
driver measured and recorded, never a config rebuilt on its side. A trial is then
``fgmodel.fit.fit`` with a callback that forwards each epoch to ``tune.report``; the
scheduler (`search.moasha`: MOASHA, ASHA or FIFO) decides after each report whether it
goes on. What the driver needs to record the trial honestly rides in the reports: the
epoch, the seconds spent training and evaluating, the node, and on the way out a
non-finite status or the exception's line (reported just before it is re-raised, so the
record gets the error while Ray still sees the failure and applies its retries).

A trial trains its config's schedule (``optim.epochs``, so the exported YAML is what was
searched) but stops after ``stop_after`` epochs when the schedule's tail is dead
(`search.spec.StudySpec.trained_epochs`): fit ends when its report callback says so. A
fractional GPU caps the process's share of the device's memory at that fraction.
"""

from __future__ import annotations

from typing import Any

import ray
from ray import tune

from search import attrs
from search.live import error_line

STOP_AFTER = "stop_after"  # the trial config's key: epochs to train before fit stops (None: all)


def trial_config(name: str, number: int, config: dict[str, Any], gflops: float, paper_row: str | None = None,
                 stop_after: int | None = None, **extra: Any) -> dict[str, Any]:
    """What Tune gets for one trial: the config to train and what the scheduler and the records key on.

    ``name`` names the trial's Ray directory; ``number`` is the search trial it trains (or
    confirms); ``gflops`` is the scheduler's second objective; a ``paper_row`` is never
    stopped early; ``stop_after``: the epochs it trains (None: its config's all).
    """
    out = {attrs.CONFIG: config, "name": name, "number": number, attrs.GFLOPS: gflops, STOP_AFTER: stop_after,
           **extra}
    if paper_row:
        out[attrs.PAPER_ROW] = paper_row
    return out


def train_trial(config: dict[str, Any]) -> None:
    """Ray function trainable: fit ``config["config"]`` (a `trial_config`), reporting each epoch to Tune.

    The config is built inside, so an error building it is reported like one in training.
    """
    import torch

    from fgmodel.config import from_dict
    from fgmodel.fit import fit

    assigned = ray.get_runtime_context().get_assigned_resources()
    torch.set_num_threads(max(1, int(assigned.get("CPU", 1.0))))
    share_gpu(assigned.get("GPU", 0.0))
    node_id = ray.get_runtime_context().get_node_id()
    totals = {"train_seconds": 0.0}
    stop_after = config.get(STOP_AFTER)

    def report(epoch: Any) -> bool:
        totals["train_seconds"] += float(epoch.seconds)
        tune.report({**epoch.to_dict(), **totals, attrs.NODE_ID: node_id})
        return stop_after is not None and epoch.epoch >= stop_after

    try:
        result = fit(from_dict(config[attrs.CONFIG]), report)
    except Exception as exc:
        tune.report({"error": error_line(exc), attrs.NODE_ID: node_id})
        raise
    if result.status == "non_finite":
        tune.report({"status": "non_finite", "reason": result.reason, attrs.NODE_ID: node_id})


def share_gpu(fraction: float) -> None:
    """Cap this process's CUDA memory at ``fraction`` of the device when Ray gave it a fraction of a GPU.

    Two trials on one GPU (``gpus_per_trial: 0.5``) otherwise each grow their cache until
    one runs out of memory; with the cap, a trial that needs more fails alone, at once.
    """
    import torch

    if 0 < fraction < 1 and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction)
