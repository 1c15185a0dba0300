"""A study spec: ``studies/<task>.yaml`` plus command-line overrides, loaded strictly.

The spec says what to search (task, backbone, image size, epochs, space, FLOPs budget)
and how (trials, concurrency, resources per trial, sampler, early stopping, storage). Like
`fgmodel.config`, an unknown key or a wrong type fails with one line naming the key,
never a silent default. `base_config` turns a spec into the `RunConfig` every trial
starts from, so the search, the export and the final training share one config type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from fgmodel.config import ConfigError, RunConfig, flatten, from_mapping, load_yaml
from fgmodel.data import NUM_CLASSES
from fgmodel.schedule import DEAD_LR_FRACTION, useful_epochs

SPECS_DIR = Path(__file__).resolve().parent.parent / "studies"

AUTO = "auto"  # concurrency / cpus_per_trial: from the Ray cluster's resources (search.tuner.resolve_resources)
SAMPLERS = ("tpe", "random", "gp")
CONFIRM_KEYS = ("top", "seeds", "race", "futility")  # of the confirm: block (search.confirm's flags of those names)
UNSUPPORTED_SAMPLERS = {
    "nsga2": "Optuna's NSGA-II learns only from COMPLETE trials, so it never sees the FLOPs budget "
             "of the over-budget trials the search prunes; use 'tpe'",
}
# moasha: successive halving on (val top-1, GFLOPs); asha: on val top-1 alone; fifo: every trial runs every epoch.
SCHEDULERS = ("moasha", "asha", "fifo")
# Run-config keys the spec's ``config:`` block may not set: each has its own spec field
# (which base_config applies and resume checks), or would make the search select on the
# test set.
GUARDED_CONFIG_KEYS = {
    "data.task": "set by the spec's task field, not in config:",
    "data.root": "set by the spec's data_root field (or --data-root), not in config:",
    "data.image_size": "set by the spec's image_size field (or --image-size), not in config:",
    "data.eval_on": "the search always selects on the validation split, never the test set; not settable in config:",
    "model.backbone": "set by the spec's backbone field (or --backbone), not in config:",
    "model.pretrained": "set by the spec's pretrained field, not in config:",
    "model.pretrained_fallback": "set by the spec's pretrained_fallback field, not in config:",
    "model.num_classes": "follows the spec's task, not settable in config:",
    "optim.epochs": "set by the spec's epochs field (or --epochs), not in config:",
    "optim.seed": "set by the spec's seed field (or --seed), not in config:",
}


@dataclass(frozen=True)
class StudySpec:
    task: str
    base: str = "paper_baseline"  # a preset name or a run-config YAML the space starts from
    backbone: str = "convnextv2_large"
    pretrained: str = "none"
    pretrained_fallback: bool = True
    image_size: int = 224
    epochs: int = 30  # the schedule's epochs (optim.epochs of every trial and of the exported config)
    # A trial stops, COMPLETE, once the StepLR rate stays at or below this fraction of its first
    # value (fgmodel.schedule.useful_epochs): 0.01 trains 10 of the paper's 30 epochs. None: all.
    dead_lr_fraction: float | None = DEAD_LR_FRACTION
    trials: int = 64  # trained trials; over-budget proposals are recorded (PRUNED) but do not count
    concurrency: Any = 4  # an int, or "auto": the cluster's GPUs / gpus_per_trial (CPUs when no GPU)
    cpus_per_trial: Any = 8.0  # a number, or "auto": a node's cores / the trials it runs
    gpus_per_trial: float = 1.0  # at most 1 (fit trains on one GPU); a fraction shares one
    budget: float = 0.05  # allowed GFLOPs over the baseline (same backbone, no SCRA)
    space: str = "default"
    paper: bool = True  # enqueue the paper's Table 1 rows first
    sampler: str = "tpe"  # tpe | random | gp (see SAMPLERS)
    scheduler: str = "moasha"  # moasha | asha | fifo (see SCHEDULERS)
    learn_from_stopped: bool = True  # the sampler ranks stopped trials by how far and how well they got
    grace_period: int = 3  # moasha / asha: epochs before the first cut
    reduction_factor: int = 3  # moasha / asha: keep the top 1/rf at each rung
    retries: int = 0  # Ray re-runs of a trial that raised before it is FAIL
    seed: int = 0
    data_root: str = "data"
    storage: str | None = None  # None: SQLite in the study directory
    address: str | None = None  # None: a local Ray; else an existing cluster ("auto", "host:port")
    heartbeat: int = 10  # seconds between the driver's heartbeats of its trials (dead after 3 missed)
    name: str | None = None  # the study's name and folder; None: the task's name
    study_dir: str | None = None  # None: studies/<name>
    config: dict[str, Any] = field(default_factory=dict)  # dotted RunConfig overrides
    # {top: K, seeds: N, race: false}: search.confirm re-trains the front's top K with N new
    # seeds right after the search; race: true gives them in rounds, N at most (search.racing),
    # stopping what changes the fixed design's picks with a chance under futility (0.15).
    # A key left out: 4, 3, false and 0.15; None: no confirmation
    confirm: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.task not in NUM_CLASSES:
            raise ConfigError("task", f"unknown task {self.task!r}; known: {', '.join(NUM_CLASSES)}")
        for name in ("epochs", "trials", "grace_period", "heartbeat"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        _check_auto("concurrency", self.concurrency, count=True)
        _check_auto("cpus_per_trial", self.cpus_per_trial, count=False)
        if self.dead_lr_fraction is not None and not 0 < self.dead_lr_fraction < 1:
            raise ConfigError("dead_lr_fraction", f"must be in (0, 1) or null, got {self.dead_lr_fraction}")
        if self.reduction_factor < 2:
            raise ConfigError("reduction_factor", f"must be >= 2, got {self.reduction_factor}")
        if self.gpus_per_trial < 0:
            raise ConfigError("gpus_per_trial", f"must be >= 0, got {self.gpus_per_trial}")
        if self.gpus_per_trial > 1:
            raise ConfigError("gpus_per_trial", f"a trial trains on one GPU (no data parallelism), so "
                                                f"{self.gpus_per_trial:g} would leave the rest idle: use 1, or a "
                                                f"fraction to share one")
        if self.budget < 0:
            raise ConfigError("budget", f"must be >= 0, got {self.budget}")
        if self.retries < 0:
            raise ConfigError("retries", f"must be >= 0, got {self.retries}")
        if self.sampler not in SAMPLERS:
            why = f" ({UNSUPPORTED_SAMPLERS[self.sampler]})" if self.sampler in UNSUPPORTED_SAMPLERS else ""
            raise ConfigError("sampler", f"must be {' or '.join(map(repr, SAMPLERS))}, got {self.sampler!r}{why}")
        if self.name is not None:
            _check_name(self.name)
        if self.scheduler not in SCHEDULERS:
            raise ConfigError("scheduler", f"must be {' or '.join(map(repr, SCHEDULERS))}, got {self.scheduler!r}")
        for key in flatten(self.config):  # nested sections (``data: {eval_on: ...}``) spelled out
            if key in GUARDED_CONFIG_KEYS:
                raise ConfigError(f"config.{key}", GUARDED_CONFIG_KEYS[key])
        for key, value in (self.confirm or {}).items():
            if key not in CONFIRM_KEYS:
                raise ConfigError(f"confirm.{key}", f"unknown key (known: {', '.join(CONFIRM_KEYS)})")
            want = {"race": bool, "futility": float}.get(key, int)
            kinds = (int, float) if want is float else want
            if isinstance(value, bool) is not (want is bool) or not isinstance(value, kinds):
                raise ConfigError(f"confirm.{key}", f"expected {want.__name__}, got {type(value).__name__} {value!r}")
            if want is int and value < 1:
                raise ConfigError(f"confirm.{key}", f"must be >= 1, got {value}")
            if want is float and not 0 <= value < 1:
                raise ConfigError(f"confirm.{key}", f"must be in [0, 1), got {value}")

    @property
    def study_name(self) -> str:
        return self.name or self.task

    @property
    def directory(self) -> Path:
        return Path(self.study_dir or Path("studies") / self.study_name).resolve()

    def trained_epochs(self, base: RunConfig | None = None) -> int:
        """What a COMPLETE trial trains: the base schedule's epochs up to its dead tail (`dead_lr_fraction`).

        The space searches no schedule (step, gamma, epochs), so one number holds for every
        trial; the driver records it on the study and the confirmation trains as many.
        """
        return useful_epochs((base or self.base_config()).optim, self.dead_lr_fraction)

    def replace(self, **changes: Any) -> StudySpec:
        """A copy with ``changes``, type-checked and validated like the YAML."""
        return from_dict({**to_dict(self), **changes})

    def base_config(self) -> RunConfig:
        """The config every trial starts from: the base preset switched to this search.

        eval_on is "val": the search selects on a seeded split of the training set, never
        on the test set. The data root is absolute because Ray workers run elsewhere.
        """
        cfg = load_yaml(self.base)
        return cfg.replace(
            **{
                "data.task": self.task,
                "data.root": str(Path(self.data_root).expanduser().resolve()),
                "data.image_size": self.image_size,
                "data.eval_on": "val",
                "model.backbone": self.backbone,
                "model.pretrained": self.pretrained,
                "model.pretrained_fallback": self.pretrained_fallback,
                "model.num_classes": None,
                "optim.epochs": self.epochs,
                "optim.seed": self.seed,
                **self.config,
            }
        )


def _check_auto(name: str, value: Any, *, count: bool) -> None:
    """``value`` is "auto", or a count >= 1 (``count``) or a number > 0: else one line naming the field."""
    if value == AUTO:
        return
    if isinstance(value, bool) or not isinstance(value, int if count else (int, float)):
        raise ConfigError(name, f"expected a number or {AUTO!r}, got {type(value).__name__} {value!r}")
    if value < 1 if count else value <= 0:
        raise ConfigError(name, f"must be {'>= 1' if count else '> 0'} or {AUTO!r}, got {value}")


def _check_name(name: str) -> None:
    """A study name becomes the folder ``studies/<name>`` (and Ray's trial folders): no path may hide in it."""
    if name in ("", ".") or ".." in name or any(sep in name for sep in ("/", "\\", "\0")):
        raise ConfigError("name", f"must be a plain name, not a path, got {name!r} (no '/', '\\' or '..'; "
                                  f"--study-dir sets the folder)")


FIELDS = {f.name: f for f in dataclasses.fields(StudySpec)}


def to_dict(spec: StudySpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in FIELDS}


def from_dict(data: Mapping[str, Any]) -> StudySpec:
    """Strict (`fgmodel.config.from_mapping`): an unknown key or a value of the wrong type raises `ConfigError`."""
    if not isinstance(data, Mapping):
        raise ConfigError("spec", f"expected a mapping, got {type(data).__name__}")
    spec = from_mapping(StudySpec, data, unknown="unknown spec key")
    spec.base_config()  # dotted overrides and values checked here, naming the key
    return spec


def spec_path(task: str) -> Path:
    return SPECS_DIR / f"{task}.yaml"


def load(source: str | Path, overrides: Mapping[str, Any] | None = None) -> StudySpec:
    """Read a spec by task name (``studies/<task>.yaml``) or from a file; ``overrides`` win (None = keep).

    A `Path`, or a string with a suffix or a directory part, is a file and is read as given
    (``--spec /some/file`` reads that file); a bare name is a task. Whatever is not a study
    spec fails with one line (`ConfigError`) that says so.
    """
    path = Path(source)
    if isinstance(source, str) and not path.suffix and len(path.parts) == 1:
        path = spec_path(source)
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in SPECS_DIR.glob("*.yaml")))
            raise ConfigError("task", f"no study spec {path} (known tasks: {known})")
    elif not path.exists():
        raise ConfigError("spec", f"no such file {path}")
    elif not path.is_file():
        raise ConfigError("spec", f"{path} is not a file")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError("spec", f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        why = "not text" if isinstance(exc, UnicodeDecodeError) else f"not valid YAML: {one_line_yaml(exc)}"
        raise ConfigError("spec", f"{path} is not a study spec ({why})") from None
    if data is None:
        raise ConfigError("spec", f"{path} is empty, not a study spec")
    if not isinstance(data, dict):
        raise ConfigError("spec", f"{path} is not a study spec (it holds a {type(data).__name__}, not a mapping "
                                  f"with a task: key)")
    if "task" not in data and not data.keys() & FIELDS.keys():
        keys = ", ".join(map(str, list(data)[:4]))
        raise ConfigError("spec", f"{path} is not a study spec (no task: key; it has {keys}; a run config goes to "
                                  f"python -m fgmodel.train --config)")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(data)


def one_line_yaml(exc: Exception) -> str:
    """YAML's message without its multi-line context marks."""
    return " ".join(str(exc).split())
