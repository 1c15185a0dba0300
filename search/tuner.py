"""Ray's side of a search: one Ray session, the scheduler, and one way to run a set of trials.

The search and the confirmation both run trials here (`run_trials`): Tune takes the
trials a searcher hands out (the search's `search.searcher.StudySearcher`, the
confirmation's `FixedTrials`), runs `search.trainable.train_trial` on each with the spec's
resources, concurrency and retries, and asks the scheduler after each epoch whether a
trial goes on. Ray is started and stopped in one place (`ray_session`), after the
address is settled and probed (`resolve_address`: Ray's own retries take minutes).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ray.tune.schedulers import FIFOScheduler
from ray.tune.search import Searcher

from fgmodel.cli import one_line
from fgmodel.config import ConfigError
from search import attrs
from search.live import METRIC
from search.moasha import Curve, MOASHAScheduler
from search.progress import Reporter
from search.spec import AUTO, StudySpec

ADDRESS_PROBE_S = 5.0  # seconds to wait for the cluster's GCS port to accept a connection


def resolve_address(address: str | None) -> str | None:
    """The ``HOST:PORT`` of the Ray cluster to join, or None to start a local Ray.

    Ray's own ``ray.init(address=...)`` retries an unreachable GCS for minutes, and with
    ``auto`` and no cluster of ``ray start`` it joins any Ray it finds running on the
    machine (another user's local one). So the address is settled here: ``auto`` is
    ``RAY_ADDRESS`` or the cluster the last ``ray start`` on this machine recorded; a
    ``ray://`` address (Ray Client) is refused, since it moves the driver, the study's
    SQLite path and the data root onto the head node. Raises `ConfigError` (one line).
    """
    if address is None or address == "local":
        address = os.environ.get("RAY_ADDRESS") or None  # ray.init(address=None) honours it too
        if address is None or address == "local":
            return None
    if address.startswith("ray://"):
        raise ConfigError("address", f"{address} is a Ray Client address, which runs the search driver on the "
                                     f"head node (where the study's SQLite path and --data-root are not this "
                                     f"machine's); run the search on a node of the cluster and pass the GCS "
                                     f"address instead, e.g. --address HEAD:6379")
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or _last_ray_start()
        if not address:
            raise ConfigError("address", f"auto: no Ray cluster was started on this machine (no {_address_file()}, "
                                         f"RAY_ADDRESS unset); run `ray start --head` first, or pass HOST:PORT")
        return resolve_address(address)
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError("address", f"expected auto, local or HOST:PORT (the GCS of `ray start --head`), "
                                     f"got {address!r}")
    return f"{host}:{port}"


def _address_file() -> Path:
    """Where ``ray start`` records its cluster's address (ray/_common/utils.py, get_ray_address_file)."""
    tmp = os.environ.get("RAY_TMPDIR") or (os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None)
    return Path(tmp or "/tmp") / "ray" / "ray_current_cluster"


def _last_ray_start() -> str | None:
    try:
        return _address_file().read_text().strip() or None
    except OSError:
        return None


def probe(address: str, timeout: float = ADDRESS_PROBE_S) -> None:
    """Fail in seconds, with one line, when nothing accepts a connection at ``HOST:PORT``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise ConnectionError(f"cannot reach the Ray cluster at {address} ({why}): is `ray start --head` running "
                              f"there, and is the port open from here?") from None


def check_address(spec: StudySpec) -> None:
    """Pre-flight of ``--address``: its form, and that something listens there (seconds, not minutes)."""
    address = resolve_address(spec.address)
    if address is not None:
        probe(address)


def _ray_init(spec: StudySpec, verbose: bool) -> bool:
    """Start a local Ray, or join the spec's cluster (probed first); returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    address = resolve_address(spec.address)
    if address is not None:
        probe(address)
    try:
        ray.init(
            # "local": a new Ray of its own; None would join whatever cluster the last `ray start` left
            address=address or "local",
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
        )
    except ConnectionError as exc:
        raise ConnectionError(f"cannot reach the Ray cluster {spec.address}: {one_line(exc)}") from None
    return True


@contextlib.contextmanager
def ray_session(spec: StudySpec, verbose: bool) -> Iterator[bool]:
    """Ray up and a trial's resources checked for the block; yields whether the block started Ray.

    The one place Ray is started and stopped. A Ray already up (the driver's, around the
    trials and the confirmation; a test's or a benchmark's) is used as it is and left up;
    one started here is shut down on the way out, also when the resource check fails.
    """
    if not verbose:
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
    owns_ray = _ray_init(spec, verbose)
    try:
        check_resources(resolve_resources(spec))
        yield owns_ray
    finally:
        if owns_ray:
            import ray

            ray.shutdown()


def auto_resources(nodes: Sequence[Mapping[str, float]], concurrency: int | str, cpus_per_trial: float | str,
                   gpus_per_trial: float) -> tuple[int, float]:
    """(concurrency, cpus_per_trial) with each "auto" settled on ``nodes`` (Ray's resources of each: CPU, GPU).

    GPU trials: a node runs ``GPU // gpus_per_trial`` of them, each with that share of its
    cores (the smallest share among the GPU nodes, so every node fills its GPUs), and the
    concurrency is what all nodes run together. CPU trials: one core each when both are
    auto (the concurrency is every core), else the cores shared out over the given concurrency.
    """
    def slots(node: Mapping[str, float], cpus: float) -> int:
        by_cpu = math.floor(node.get("CPU", 0.0) / cpus + 1e-9)
        return min(by_cpu, math.floor(node.get("GPU", 0.0) / gpus_per_trial + 1e-9)) if gpus_per_trial else by_cpu

    cpus = cpus_per_trial
    if cpus == AUTO:
        if gpus_per_trial:
            per_node = [(n.get("CPU", 0.0), math.floor(n.get("GPU", 0.0) / gpus_per_trial + 1e-9)) for n in nodes]
            cpus = min((max(math.floor(c / k), 1) for c, k in per_node if k), default=1)
        elif concurrency == AUTO:
            cpus = 1
        else:
            total = sum(n.get("CPU", 0.0) for n in nodes)
            cpus = min(max(math.floor(total / int(concurrency)), 1), max((n.get("CPU", 1.0) for n in nodes), default=1))
    width = int(concurrency) if concurrency != AUTO else max(sum(slots(n, float(cpus)) for n in nodes), 1)
    return width, float(cpus)


def resolve_resources(spec: StudySpec) -> StudySpec:
    """``spec`` with ``concurrency: auto`` and ``cpus_per_trial: auto`` settled on the running Ray's nodes."""
    if AUTO not in (spec.concurrency, spec.cpus_per_trial):
        return spec
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    concurrency, cpus = auto_resources(nodes, spec.concurrency, spec.cpus_per_trial, spec.gpus_per_trial)
    return spec.replace(concurrency=concurrency, cpus_per_trial=cpus)


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


def make_scheduler(spec: StudySpec, curves: Iterable[Curve] = (), max_t: int | None = None) -> Any:
    """The spec's early stopping: successive halving on (val top-1, GFLOPs) or val top-1, or none.

    ``max_t``: the epochs a COMPLETE trial trains (default: the spec's `StudySpec.trained_epochs`,
    its schedule up to the dead tail); the rungs count down from it (`search.plan.rung_ladder`).

    ``moasha`` and ``asha`` are `search.moasha.MOASHAScheduler` (multi- or single-objective):
    both never stop the paper's rows and take the study's finished ``curves`` into their
    rungs, so a resumed search judges new trials against what the study already ran.
    (Ray's own ``ASHAScheduler`` can do neither; ``asha`` keeps its rule, the top 1/rf of a
    rung by val top-1, with ``ceil`` where Ray interpolates a percentile.)
    """
    if spec.scheduler == "fifo":
        return FIFOScheduler()
    max_t = max_t or spec.trained_epochs()
    scheduler = MOASHAScheduler(
        max_t=max_t, grace_period=min(spec.grace_period, max_t), reduction_factor=spec.reduction_factor,
        metric=METRIC, cost=attrs.GFLOPS, multi_objective=spec.scheduler == "moasha",
    )
    scheduler.restore_rungs(curves)
    return scheduler


class FixedTrials(Searcher):
    """Hands Tune a fixed list of `search.trainable.trial_config` dicts, in order, then FINISHED.

    The confirmation's runs are known in advance; going through a searcher (rather than a
    grid) lets each trial carry its finished config, as the search's trials do.
    """

    def __init__(self, configs: Iterable[dict[str, Any]]) -> None:
        super().__init__(metric=METRIC, mode="max")
        self.queue = list(configs)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        return self.queue.pop(0) if self.queue else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """Nothing to learn: the confirmation records its runs through a Tune callback."""


def run_trials(
    spec: StudySpec,
    *,
    name: str,
    searcher: Searcher,
    num_samples: int,
    study_dir: Path,
    trainable: Callable[[dict[str, Any]], None] | None = None,
    scheduler: Any = None,
    callbacks: Sequence[Any] = (),
    verbose: bool = False,
) -> None:
    """Run the trials ``searcher`` hands out (at most ``num_samples``) under Ray Tune until it is finished.

    Search and confirmation alike: the spec's resources per trial, concurrency and retries
    (``FailureConfig``), one `search.trainable.train_trial` (``trainable`` replaces it: tests),
    trials named by their config's ``name``, Ray's files under ``study_dir/ray``. Returns
    when Tune does (every trial ended, or Ctrl-C: Tune stops the trials and returns).
    """
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TB per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # The trainable's last report of a raising or non-finite trial carries the reason and
    # deliberately no val_top1 (the scheduler must not rank it); Tune's strict check would reject it.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    from ray import tune

    from search.trainable import train_trial

    with ray_session(spec, verbose):  # Ray is up already when run_search started it: a no-op
        spec = resolve_resources(spec)
        fn = tune.with_resources(trainable or train_trial, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
        tune.Tuner(
            fn,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler or FIFOScheduler(),
                num_samples=num_samples,
                max_concurrent_trials=spec.concurrency,
                reuse_actors=True,  # torch and the model code stay imported between trials
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(study_dir / "ray"),
                verbose=1 if verbose else 0,
                failure_config=tune.FailureConfig(max_failures=spec.retries),
                callbacks=list(callbacks),
            ),
        ).fit()


def progress_callback(reporter: Reporter) -> Any:
    """A Tune callback that gives the reporter a tick at each step of Tune's loop (it prints every 30 s)."""
    from ray import tune

    class Progress(tune.Callback):
        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            reporter.tick()

    return Progress()


def _trial_name(trial: Any) -> str:
    return str(trial.config.get("name", trial.trial_id))
