"""The one config type that flows from a search space to export to final training.

Frozen dataclasses grouped in `RunConfig`, with a strict YAML round trip: an unknown
key, a wrong type or an out-of-range value raises `ConfigError` naming the field
(``model.dropout``), never a silent default. Flat views use dotted names
(``{"optim.lr": 1e-4}``): `flatten` / `unflatten` convert, `RunConfig.replace` takes them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

NUM_STAGES = 4  # every ConvNeXt / ConvNeXt-V2 variant in timm has four stages
PRESETS_DIR = Path(__file__).parent / "presets"
MAX_SEED = 2**32 - 1  # numpy's seed range

T = TypeVar("T")

# The fields that may differ when a run or a study resumes: where the data is and how it is
# read and run, not what is trained (the results do not depend on them).
RESUME_FREE_KEYS: tuple[str, ...] = (
    "data.root", "data.num_workers", "data.cache_dir", "model.compile", "optim.micro_batch",
)


class ConfigError(ValueError):
    """A config value is unknown, of the wrong type or out of range; `field` names it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message

    def __reduce__(self):  # pickles across processes (Ray workers, DataLoader workers)
        return type(self), (self.field, self.message)


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "convnextv2_large"
    num_classes: int | None = None  # None: taken from the task (fgmodel.data.head_size)
    pretrained: str = "none"  # "none", a timm tag, or a local .safetensors / .pth file
    pretrained_fallback: bool = False  # random init with a warning when weights can't be had
    scra_stages: tuple[int, ...] = ()  # 0-based timm stage indices, SCRA after each
    scra_kernel: int = 1
    dropout: float = 0.0  # probability, right before the final linear layer
    # torch.compile the forward (a speed setting: same model, same results). null: on CUDA, off on CPU, where it
    # does not pay: atto at 32-64 px compiles for 60-90 s (~6 s from inductor's disk cache), then steps ~1.1x
    # faster (bench/train_step.py --compile): ~100 demo epochs to earn back
    compile: bool | None = None

    def validate(self) -> None:
        if not self.backbone.startswith(("convnextv2_", "convnext_")):
            raise ConfigError("model.backbone", f"{self.backbone!r} is not a timm ConvNeXt(-V2) variant")
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError("model.num_classes", f"must be >= 2, got {self.num_classes}")
        for stage in self.scra_stages:
            if not 0 <= stage < NUM_STAGES:
                raise ConfigError("model.scra_stages",
                                  f"stage {stage} does not exist (the backbone has stages 0-{NUM_STAGES - 1})")
        if len(set(self.scra_stages)) != len(self.scra_stages):
            raise ConfigError("model.scra_stages", f"repeated stage in {list(self.scra_stages)}")
        if self.scra_kernel not in (1, 3):
            raise ConfigError("model.scra_kernel", f"must be 1 or 3, got {self.scra_kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class AugmentConfig:
    """Defaults are "no augmentation"; the paper's values are in the presets."""

    hflip_p: float = 0.0
    rotation_deg: float = 0.0  # rotate by up to +-deg ...
    rotation_p: float = 0.0  # ... with this probability
    brightness: float = 0.0  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0  # shift drawn from [-hue, hue], at most 0.5
    jitter_p: float = 0.0  # probability of applying the colour jitter

    def validate(self) -> None:
        for name in ("hflip_p", "rotation_p", "jitter_p"):
            _check_range(f"augment.{name}", getattr(self, name), 0.0, 1.0)
        _check_range("augment.rotation_deg", self.rotation_deg, 0.0, 180.0)
        for name in ("brightness", "contrast", "saturation"):
            _check_range(f"augment.{name}", getattr(self, name), 0.0, 1.0)
        _check_range("augment.hue", self.hue, 0.0, 0.5)


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"  # "adam" or "adamw"
    lr: float = 1e-4
    weight_decay: float = 1e-5
    step_size: int = 5  # StepLR: multiply the lr by gamma every step_size epochs
    gamma: float = 0.1
    epochs: int = 30
    batch_size: int = 128  # the effective batch; accumulation reaches it if needed
    # at most this many images per forward pass, gradients accumulated up to batch_size (None: the
    # whole batch; on CUDA an out-of-memory error halves it automatically)
    micro_batch: int | None = None
    l2sp_lambda: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError("optim.optimizer", f"must be 'adam' or 'adamw', got {self.optimizer!r}")
        if not self.lr > 0:
            raise ConfigError("optim.lr", f"must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError("optim.weight_decay", f"must be >= 0, got {self.weight_decay}")
        for name in ("step_size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"optim.{name}", f"must be >= 1, got {getattr(self, name)}")
        _check_range("optim.gamma", self.gamma, 0.0, 1.0)
        if self.l2sp_lambda < 0:
            raise ConfigError("optim.l2sp_lambda", f"must be >= 0, got {self.l2sp_lambda}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ConfigError("optim.micro_batch", f"must be >= 1 or null, got {self.micro_batch}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError("optim.seed", f"must be in [0, {MAX_SEED}], got {self.seed}")


@dataclass(frozen=True)
class DataConfig:
    # checked against the task table where a run is built (fgmodel.data.head_size), since this
    # module knows no datasets
    task: str = "demo"
    root: str = "data"  # the archive's top folder or its parent
    image_size: int = 224
    val_fraction: float = 0.1  # held out of train for the search
    # seeds which images are held out; None: optim.seed. search.confirm varies optim.seed (weights,
    # order, augmentation) on the search's own split by setting this to the search's seed.
    split_seed: int | None = None
    eval_on: str = "val"  # "val": search split of train; "test": final training on all of train
    num_workers: int = 2
    # Decode and resize every image once into a raw-pixel cache here (~150 KiB an image at
    # 224 px): ~1.8x the images/s of decoding JPEGs each epoch (bench/loader.py). None: decode every epoch.
    cache_dir: str | None = None

    def validate(self) -> None:
        if not 16 <= self.image_size <= 1024:
            raise ConfigError("data.image_size", f"must be in [16, 1024], got {self.image_size}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("data.val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        if self.eval_on not in ("val", "test"):
            raise ConfigError("data.eval_on", f"must be 'val' or 'test', got {self.eval_on!r}")
        if self.num_workers < 0:
            raise ConfigError("data.num_workers", f"must be >= 0, got {self.num_workers}")
        if self.split_seed is not None and not 0 <= self.split_seed <= MAX_SEED:
            raise ConfigError("data.split_seed", f"must be in [0, {MAX_SEED}] or null, got {self.split_seed}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        for section in (self.model, self.augment, self.optim, self.data):
            section.validate()

    def replace(self, **dotted: Any) -> RunConfig:
        """A copy with dotted overrides, e.g. ``cfg.replace(**{"optim.epochs": 3})``."""
        return from_dict(_merge(to_dict(self), unflatten(dotted)))


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(name, f"must be in [{low}, {high}], got {value}")


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain dict of builtins (tuples as lists), the shape YAML and Optuna attrs hold."""

    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    return {
        f.name: {k: plain(v) for k, v in dataclasses.asdict(getattr(config, f.name)).items()}
        for f in dataclasses.fields(config)
    }


def flatten(nested: Mapping[str, Any]) -> dict[str, Any]:
    """``{"data": {"root": x}}`` -> ``{"data.root": x}``, tuples as lists (as a JSON round trip gives)."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in flatten(value).items()})
        else:
            flat[str(key)] = list(value) if isinstance(value, tuple) else value
    return flat


def unflatten(dotted: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"data.root": x}`` -> ``{"data": {"root": x}}``; a key without a section raises `ConfigError`."""
    nested: dict[str, dict[str, Any]] = {}
    for key, value in dotted.items():
        section, _, name = key.partition(".")
        if not name:
            raise ConfigError(key, "overrides are 'section.key', e.g. 'optim.lr'")
        nested.setdefault(section, {})[name] = value
    return nested


def from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Strict inverse of `to_dict`: missing keys take defaults, unknown ones raise."""
    if not isinstance(data, Mapping):
        raise ConfigError("config", f"expected a mapping of sections, got {type(data).__name__}")
    return from_mapping(RunConfig, data, unknown="unknown section")


def from_mapping(cls: type[T], values: Mapping[str, Any], prefix: str = "", unknown: str = "unknown key") -> T:
    """``cls(**values)`` for a dataclass, strictly: the one loader of run configs and study specs.

    Every key must be a field (else `ConfigError` naming ``prefix + key`` and saying
    `unknown`), every value of its field's type (`coerce`; a dataclass field loads from a
    nested mapping), every field without a default present; the rest take defaults.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  (cls is a dataclass)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{prefix}{key}", f"{unknown} (known: {', '.join(sorted(fields))})")
        kwargs[key] = coerce(f"{prefix}{key}", hints[key], value)
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}", "missing")
    return cls(**kwargs)


def coerce(name: str, hint: Any, value: Any) -> Any:
    """Check `value` against the type hint of field `name`; ints pass as floats, lists as tuples.

    Hand-written because the config must reject (not convert) a wrong type, naming the field.
    """
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(name, inner, value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(name, f"expected a list, got {type(value).__name__} {value!r}")
        (item_type, _) = typing.get_args(hint)
        return tuple(coerce(f"{name}[{i}]", item_type, v) for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):  # a section; null is a YAML section left empty (``model:``)
        return from_mapping(hint, _mapping(name, {} if value is None else value), prefix=f"{name}.")
    if origin is dict:
        key_type, item_type = typing.get_args(hint)
        return {coerce(f"{name}.{k}", key_type, k): coerce(f"{name}.{k}", item_type, v)
                for k, v in _mapping(name, value).items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is not bool and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(name, f"expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def _mapping(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"expected a mapping, got {type(value).__name__} {value!r}")
    return value


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = {k: dict(v) for k, v in base.items()}
    for section, values in update.items():
        if section not in merged:
            raise ConfigError(section, f"unknown section (known: {', '.join(merged)})")
        merged[section].update(values)
    return merged


def dump_yaml(config: RunConfig, path: str | Path, header: str = "") -> None:
    """Write ``config`` as YAML; ``header`` (``# ...`` comment lines) goes first."""
    Path(path).write_text(header + yaml.safe_dump(to_dict(config), sort_keys=False))


def load_yaml(path: str | Path) -> RunConfig:
    """Read a run config; a preset name (``paper_best``) resolves to the shipped file."""
    path = Path(path)
    if not path.exists() and (PRESETS_DIR / f"{path.name}.yaml").exists():
        path = PRESETS_DIR / f"{path.name}.yaml"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from None
    return from_dict(data or {})


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
