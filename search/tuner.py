"""Ray's side of a search: start or join Ray, check a trial fits a node, run the Tuner.

The searcher proposes the trials (`search.searcher.StudySearcher`); Tune runs them with
the spec's resources and concurrency and asks the scheduler after each epoch whether a
trial goes on. Ray is imported here only, so the rest of the search can be read and
tested without it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fgmodel.cli import one_line
from fgmodel.config import ConfigError, to_dict
from search.searcher import METRIC, StudySearcher
from search.spec import StudySpec


def ray_init(spec: StudySpec, verbose: bool) -> bool:
    """Start (or join, with ``address``) Ray; returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    try:
        ray.init(
            address=spec.address,
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
        )
    except ConnectionError as exc:
        raise ConnectionError(f"cannot reach the Ray cluster {spec.address}: {one_line(exc)}") from None
    return True


def check_resources(spec: StudySpec) -> None:
    """Refuse a search whose trial fits on no Ray node (Tune would wait forever)."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    need = {"CPU": spec.cpus_per_trial, "GPU": spec.gpus_per_trial}
    if not any(all(r.get(k, 0.0) >= v for k, v in need.items() if v > 0) for r in nodes):
        biggest = max(nodes, key=lambda r: (r.get("GPU", 0.0), r.get("CPU", 0.0)), default={})
        raise ConfigError(
            "gpus_per_trial" if spec.gpus_per_trial > biggest.get("GPU", 0.0) else "cpus_per_trial",
            f"a trial needs {spec.cpus_per_trial:g} CPUs and {spec.gpus_per_trial:g} GPUs, but the largest "
            f"Ray node has {biggest.get('CPU', 0.0):g} CPUs and {biggest.get('GPU', 0.0):g} GPUs "
            f"(pass --gpus-per-trial 0 to train on CPUs, or --address of a cluster that has them)",
        )


def make_scheduler(spec: StudySpec) -> Any:
    """ASHA on validation top-1 per epoch."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        metric=METRIC, mode="max", time_attr="training_iteration", max_t=spec.epochs,
        grace_period=min(spec.grace_period, spec.epochs), reduction_factor=spec.reduction_factor,
    )


def run_tuner(
    spec: StudySpec,
    searcher: StudySearcher,
    study_dir: Path,
    trainable: Callable[..., Any] | None,
    verbose: bool,
    remaining: int,
) -> None:
    """Run the trials under Ray Tune until the searcher is finished (or Ctrl-C)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TB per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # The trainable's last report of a raising or non-finite trial carries the reason and
    # deliberately no val_top1 (the scheduler must not rank it); Tune's strict check would reject it.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    import ray
    from ray import tune

    from search.trainable import train_trial

    if not verbose:
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
    owns_ray = ray_init(spec, verbose)
    try:
        check_resources(spec)
        fn = tune.with_parameters(trainable or train_trial, space=spec.space, base=to_dict(searcher.base))
        fn = tune.with_resources(fn, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
        tuner = tune.Tuner(
            fn,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=make_scheduler(spec),
                num_samples=remaining,  # an upper bound: the searcher ends first (over-budget trials count)
                max_concurrent_trials=spec.concurrency,
                reuse_actors=True,  # torch and the model code stay imported between trials
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=f"{spec.study_name}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(study_dir / "ray"),
                verbose=1 if verbose else 0,
                failure_config=tune.FailureConfig(max_failures=spec.retries),
            ),
        )
        tuner.fit()
    finally:
        if owns_ray:
            ray.shutdown()


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.config.get('number', trial.trial_id)}"
