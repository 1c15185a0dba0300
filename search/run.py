"""The search: ``python -m search.run --task foodx`` (also cub, cub_aircraft, demo).

Reads ``studies/<task>.yaml`` (flags override any field), opens the Optuna study (SQLite
under ``studies/<name>/`` unless ``--storage``), checks the data before Ray starts, then
lets Ray Tune run the trials that `search.searcher.StudySearcher` proposes, with ASHA
stopping weak ones per epoch. At the end it writes the reports and prints the front.

Faults: a trial that raises is FAIL and the search goes on (``retries`` re-runs first).
A killed driver leaves RUNNING trials behind; ``--resume`` marks them FAIL ("driver
died"), queues their configs again and runs only the remaining count. Ctrl-C stops the
trials, marks them FAIL ("interrupted") and prints the command that resumes.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from fgmodel.config import ConfigError, RunConfig, to_dict
from search import budget as budget_mod
from search import spec as spec_mod
from search.searcher import DRIVER_DIED, INTERRUPTED, METRIC, StudySearcher, counted_trials
from search.spec import StudySpec
from search.studydir import StudyPointer, default_storage, display_url, storage_for, write_pointer

DIRECTIONS = ["maximize", "minimize"]  # [val_top1, gflops]
# Spec fields whose change would make a resumed study mix incomparable trials (the
# ``config:`` overrides and the effective pretrained weights are held fixed through the
# stored base config, see check_resume).
FIXED_ON_RESUME = ("task", "base", "backbone", "image_size", "epochs", "budget", "space", "seed")
# Base-config fields a resume may change: where the data is and how it is read, not what it is.
FREE_ON_RESUME = ("data.root", "data.num_workers", "data.cache_dir")


class StudyExists(ValueError):
    pass


class Interrupted(Exception):
    """Ctrl-C before Ray started (data check, FLOPs, opening the study)."""

    def __init__(self, study_created: bool):
        super().__init__("interrupted before the trials started")
        self.study_created = study_created


@dataclass
class Outcome:
    study: optuna.Study
    study_dir: Path
    interrupted: bool
    wall_seconds: float
    searcher: StudySearcher | None


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """TPE: multivariate and grouped (the conditional params, L2SP lambda and the SCRA
    kernel, are modelled jointly with the choices they depend on), constant liar for
    parallel trials. (NSGA-II is not offered: it learns only from COMPLETE trials, so it
    would never see the budget of the over-budget trials the searcher prunes.)

    The FLOPs constraint reaches the sampler through ``trial.set_constraint`` in the
    searcher (Optuna 5's replacement of the deprecated ``constraints_func``), set when the
    trial is asked, so it holds for every state, PRUNED over-budget trials included.
    A resumed study reseeds (seed + trials so far) so it does not replay its first draws.
    """
    seed = spec.seed + seed_offset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)


def measure_fn() -> Callable[[RunConfig], tuple[float, int]]:
    from fgmodel import flops

    def measure(cfg: RunConfig) -> tuple[float, int]:
        cost = flops.measure(cfg.model, cfg.num_classes, cfg.data.image_size)
        return float(cost.gflops), int(cost.params)

    return measure


def check_data(base: RunConfig) -> None:
    """Fail before Ray starts when the dataset is missing; the demo is generated here, once."""
    from fgmodel.data import load_task

    load_task(base.data.task, base.data.root)


def resolve_pretrained(base: RunConfig, log: Callable[[str], None] = print) -> tuple[RunConfig, str]:
    """Settle the pretrained weights once, in the driver, so every trial starts alike.

    Returns the base config every trial gets and the weights' effective source. With
    ``model.pretrained: none`` this costs nothing. Otherwise the model is built once on
    the CPU: weights that load are kept (and a trial that cannot load them later fails
    loudly rather than training from random init); weights that cannot be had end the
    run (`PretrainedUnavailable`, one line) unless ``pretrained_fallback``, which prints one
    warning here and sets ``model.pretrained: none`` for the whole study.
    """
    if base.model.pretrained == "none":
        return base, "none"
    from fgmodel.model import PretrainedUnavailable, build_model

    strict = base.replace(**{"model.pretrained_fallback": False})
    try:
        build_model(strict.model, strict.num_classes, device="cpu")
    except PretrainedUnavailable as exc:
        if not base.model.pretrained_fallback:
            raise
        log(f"warning: {exc}; every trial trains from random init (pretrained_fallback)")
        return base.replace(**{"model.pretrained": "none"}), f"none (fallback: {base.model.pretrained} unavailable)"
    return strict, base.model.pretrained


def check_resume(attrs: dict[str, Any], spec: StudySpec, base: RunConfig) -> None:
    """Refuse a resume whose spec or base config differs from the study's (`ConfigError` naming the field)."""
    for key in FIXED_ON_RESUME:
        was = attrs.get(key)
        now = getattr(spec, key)
        if was is not None and was != now:
            raise ConfigError(key, f"the study was created with {was!r}, not {now!r}; resume with the same value or start a new --name")
    stored = attrs.get("base_config")
    if stored is None:
        return
    was, now = _flatten(stored), _flatten(to_dict(base))
    for key in sorted(set(was) | set(now)):
        if key not in FREE_ON_RESUME and was.get(key, "<unset>") != now.get(key, "<unset>"):
            raise ConfigError(key, f"the study was created with {was.get(key, '<unset>')!r}, now {now.get(key, '<unset>')!r} "
                                   f"(spec, its config: block or the pretrained weights); resume with the same value or start a new --name")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"root": x}}`` -> ``{"data.root": x}``; tuples as lists (the attr went through JSON)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def open_study(spec: StudySpec, url: str, *, resume: bool, base: RunConfig | None = None) -> optuna.Study:
    storage = storage_for(url)
    names = optuna.get_all_study_names(storage)
    name = spec.study_name
    if name in names and not resume:
        raise StudyExists(
            f"study {name!r} already exists in {display_url(url)}: pass --resume to continue it, "
            f"or --name NEW for a fresh study"
        )
    if name not in names and resume:
        raise StudyExists(f"no study {name!r} in {display_url(url)} to resume; run without --resume to start it")
    if not resume:
        return optuna.create_study(
            study_name=name, storage=storage, directions=DIRECTIONS, sampler=make_sampler(spec)
        )
    study = optuna.load_study(study_name=name, storage=storage)
    check_resume(study.user_attrs, spec, base if base is not None else spec.base_config())
    study.sampler = make_sampler(spec, seed_offset=len(study.get_trials(deepcopy=False)))
    return study


def recover_left_over(study: optuna.Study, reason: str) -> list[int]:
    """Fail trials left RUNNING (a killed driver) and queue their configs again; returns their numbers."""
    numbers = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial = optuna.Trial(study, frozen._trial_id)
        trial.set_user_attr("reason", reason)
        study.tell(frozen.number, state=TrialState.FAIL)
        requeue(study, [frozen.number])
        numbers.append(frozen.number)
    return numbers


def requeue(study: optuna.Study, numbers: list[int]) -> None:
    """Queue the configs of trials the driver cut short, so a resumed search runs them again."""
    for number in numbers:
        frozen = study.trials[number]
        if frozen.params:
            attrs = {"retry_of": number}
            if "paper_row" in frozen.user_attrs:
                attrs["paper_row"] = frozen.user_attrs["paper_row"]
            study.enqueue_trial(frozen.params, user_attrs=attrs)


def set_study_attrs(
    study: optuna.Study, spec: StudySpec, base: RunConfig, baseline_gflops: float, pretrained: str = "none"
) -> None:
    attrs = {
        "task": spec.task,
        "base": spec.base,
        "backbone": spec.backbone,
        "pretrained": pretrained,  # the weights' effective source (see resolve_pretrained)
        "seed": spec.seed,
        "image_size": spec.image_size,
        "epochs": spec.epochs,
        "budget": spec.budget,
        "baseline_gflops": baseline_gflops,
        "space": spec.space,
        "base_config": to_dict(base),
        "spec": {k: v for k, v in spec_mod.to_dict(spec).items() if k not in ("storage",)},
    }
    for key, value in attrs.items():
        study.set_user_attr(key, value)


def _ray_init(spec: StudySpec, verbose: bool) -> bool:
    """Start (or join, with ``address``) Ray; returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(
        address=spec.address,
        include_dashboard=False,
        log_to_driver=verbose,
        logging_level=logging.INFO if verbose else logging.ERROR,
    )
    return True


def _check_resources(spec: StudySpec) -> None:
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


def run_search(
    spec: StudySpec,
    *,
    resume: bool = False,
    trainable: Callable[..., Any] | None = None,
    verbose: bool = False,
    resume_command: str | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
    """The whole search for ``spec``; ``trainable`` replaces `search.trainable.train_trial` (tests)."""
    started = time.perf_counter()
    import spaces

    spaces.get(spec.space)  # unknown space: one line, before anything starts
    study = None
    try:
        base = spec.base_config()
        check_data(base)
        base, pretrained = resolve_pretrained(base, log)
        from fgmodel import flops

        baseline_gflops = float(flops.baseline(base.model, base.num_classes, image_size=spec.image_size).gflops)

        study_dir = spec.directory
        study_dir.mkdir(parents=True, exist_ok=True)
        url = spec.storage or default_storage(study_dir)
        study = open_study(spec, url, resume=resume, base=base)
        write_pointer(study_dir, StudyPointer(storage=url, study_name=spec.study_name))
        if not resume:
            set_study_attrs(study, spec, base, baseline_gflops, pretrained)
            if spec.paper:
                for label, params in spaces.paper_rows(spec.space, base):
                    study.enqueue_trial(params, user_attrs={"paper_row": label})
        else:
            left = recover_left_over(study, DRIVER_DIED)
            if left:
                log(f"resume: trials {', '.join(map(str, left))} were left RUNNING by a dead driver: FAIL, queued again")
    except KeyboardInterrupt:
        raise Interrupted(study_created=study is not None) from None

    remaining = spec.trials - counted_trials(study)
    limit = budget_mod.limit(baseline_gflops, spec.budget)
    log(f"study {spec.study_name!r}: {spec.trials} trials ({max(remaining, 0)} to run), {spec.concurrency} at a time, "
        f"{spec.epochs} epochs max; baseline {baseline_gflops:.4g} GFLOPs, budget limit {limit:.4g} GFLOPs")
    log(f"dashboard: optuna-dashboard {shlex.quote(display_url(url))}")

    searcher = None
    interrupted = False
    if remaining > 0:
        searcher = StudySearcher(
            study, spec.space, base, measure=measure_fn(), baseline_gflops=baseline_gflops,
            budget=spec.budget, epochs=spec.epochs, n_trials=spec.trials, log=log,
        )
        try:
            interrupted = _tune(spec, searcher, study_dir, trainable, verbose, remaining)
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            requeue(study, searcher.fail_live(INTERRUPTED))
            recover_left_over(study, INTERRUPTED)  # anything asked but not yet handed to Ray
    return Outcome(study, study_dir, interrupted, time.perf_counter() - started, searcher)


def _tune(
    spec: StudySpec,
    searcher: StudySearcher,
    study_dir: Path,
    trainable: Callable[..., Any] | None,
    verbose: bool,
    remaining: int,
) -> bool:
    """Run the trials under Ray Tune; returns True when the run was interrupted (Ctrl-C)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TB per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # The trainable's last report of a raising or non-finite trial carries the reason and
    # deliberately no val_top1 (ASHA must not rank it); Tune's strict check would reject it.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from search.trainable import train_trial

    if not verbose:
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
    owns_ray = _ray_init(spec, verbose)
    try:
        _check_resources(spec)
        fn = tune.with_parameters(trainable or train_trial, space=spec.space, base=to_dict(searcher.base))
        fn = tune.with_resources(fn, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
        scheduler = ASHAScheduler(
            metric=METRIC, mode="max", time_attr="training_iteration", max_t=spec.epochs,
            grace_period=min(spec.grace_period, spec.epochs), reduction_factor=spec.reduction_factor,
        )
        tuner = tune.Tuner(
            fn,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
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
            import ray

            ray.shutdown()
    return bool(searcher.live) or counted_trials(searcher.study) < spec.trials


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.config.get('number', trial.trial_id)}"


def finish(outcome: Outcome, spec: StudySpec, resume_command: str, log: Callable[[str], None] = print) -> None:
    """Write the reports and print the front, the paths and what to run next."""
    from search.report import write_reports

    study = outcome.study
    states = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    over = sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("over_budget"))
    paths = write_reports(study, outcome.study_dir)
    log("")
    log(paths.table)
    log("")
    log("trials: " + ", ".join(f"{n} {s}" for s, n in states.items() if n) + f" ({over} over the FLOPs budget); "
        f"{outcome.wall_seconds:.0f} s")
    log(f"report: {paths.html}")
    log(f"        {paths.trials_csv}")
    log(f"        {paths.pareto_csv}")
    if outcome.interrupted:
        log(f"interrupted: resume with\n  {resume_command}")
    else:
        log(f"export: python -m search.export --study {shlex.quote(str(outcome.study_dir))} --pick knee --out best.yaml")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m search.run",
        description="Multi-objective search (val top-1 up, GFLOPs down) under a FLOPs budget, with Ray Tune and Optuna.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", help="a study spec in studies/: cub, cub_aircraft, foodx, demo")
    src.add_argument("--spec", help="a study spec YAML file")
    p.add_argument("--trials", type=int, help="Optuna trials, over-budget ones included")
    p.add_argument("--epochs", type=int, help="epochs of a complete trial")
    p.add_argument("--gpus-per-trial", type=float, help="fractions share a GPU, e.g. 0.5")
    p.add_argument("--cpus-per-trial", type=float)
    p.add_argument("--concurrency", type=int, help="trials running at once")
    p.add_argument("--data-root", help="the dataset's folder (or its parent)")
    p.add_argument("--backbone", help="a timm ConvNeXt(-V2) name, e.g. convnextv2_base")
    p.add_argument("--image-size", type=int)
    p.add_argument("--budget", type=float, help="allowed GFLOPs over the baseline, 0.05 = +5%%")
    p.add_argument("--storage", help="an Optuna RDB URL, e.g. postgresql://user:pw@host/db")
    p.add_argument("--address", help="an existing Ray cluster, e.g. auto or HEAD:6379")
    p.add_argument("--name", help="the study's name and folder (default: the task)")
    p.add_argument("--study-dir", help="where the outputs go (default: studies/<name>)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the study after a crash or Ctrl-C")
    p.add_argument("--verbose", action="store_true", help="show Ray's own output and the trials' logs")
    return p


OVERRIDES = ("trials", "epochs", "gpus_per_trial", "cpus_per_trial", "concurrency", "data_root", "backbone",
             "image_size", "budget", "storage", "address", "name", "study_dir", "seed")


def _resume_command(argv: Sequence[str]) -> str:
    args = [a for a in argv if a != "--resume"]
    return shlex.join(["python", "-m", "search.run", *args, "--resume"])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import sqlalchemy

    from fgmodel.data import DatasetNotFound

    resume_command = _resume_command(argv)
    try:
        spec = spec_mod.load(args.task or args.spec, {k: getattr(args, k) for k in OVERRIDES})
        outcome = run_search(spec, resume=args.resume, verbose=args.verbose, resume_command=resume_command)
        finish(outcome, spec, resume_command)
    except Interrupted as exc:
        again = resume_command if exc.study_created and not args.resume else shlex.join(["python", "-m", "search.run", *argv])
        print(f"interrupted before the trials started; run again with: {again}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ConfigError, StudyExists, DatasetNotFound, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # ray.init with an --address it cannot reach
        print(f"error: cannot reach the Ray cluster {args.address or ''}: {_first_line(exc)}".replace("  ", " "), file=sys.stderr)
        return 2
    except sqlalchemy.exc.SQLAlchemyError as exc:  # the storage went away during the search
        print(f"error: storage: {_first_line(exc)}", file=sys.stderr)
        return 2
    return 130 if outcome.interrupted else 0


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
