"""The task table and the types every loader shares.

Each loader module registers its task where its `load` is defined (``@register_task``,
the way timm's ``@register_model`` works), with its class count and official archives;
`fgmodel.data` imports every loader module, so importing it fills the table. This module
imports nothing of `fgmodel` but the config (which imports nothing of `fgmodel`), so
loaders import it without a cycle. A run's head size is resolved here (`head_size`), where
the tasks are known, not on the config type.

Every loader returns plain lists of `Sample` (path, label, rows to crop off the bottom),
so splitting, checking and loading never depend on which archive a sample came from.
"""

from __future__ import annotations

import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from fgmodel.config import ConfigError, RunConfig


class Sample(NamedTuple):
    path: str
    label: int
    crop_bottom: int = 0  # rows of banner to remove (FGVC-Aircraft's copyright strip)


class TaskData(NamedTuple):
    train: list[Sample]
    test: list[Sample]
    classes: list[str]


class DatasetNotFound(FileNotFoundError):
    """A dataset file is missing; the message names it and the command that fetches it."""

    def __init__(self, task: str, missing: str | Path, root: str | Path):
        self.task, self.missing, self.root = task, str(missing), str(root)
        super().__init__(
            f"{task}: {missing} not found; download it with: "
            f"python -m fgmodel.data download {task} --root {root}"
        )

    def __reduce__(self):  # rebuilt from its own arguments (e.g. sent back from a Ray worker)
        return type(self), (self.task, self.missing, self.root)


class DatasetError(ValueError):
    """A dataset file is malformed; the message names the file and the line."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        return type(self), (self.path, self.line, self.problem)


@dataclass(frozen=True)
class Archive:
    """One official archive of a task, extracted into ``root / subdir``."""

    url: str
    md5: str | None  # None: the authors publish no checksum
    subdir: str = ""

    @property
    def filename(self) -> str:
        return PurePosixPath(urllib.parse.urlparse(self.url).path).name


@dataclass(frozen=True)
class TaskSpec:
    name: str
    num_classes: int
    load: Callable[[str | Path], TaskData]
    description: str
    archives: tuple[Archive, ...] = ()  # empty: generated locally (demo)
    trainable: bool = True  # False: loadable and checkable only; a RunConfig or study spec may not name it


TASKS: dict[str, TaskSpec] = {}


def register_task(name: str, *, num_classes: int, description: str, archives: Sequence[Archive] = (),
                  trainable: bool = True) -> Callable[[Callable[[str | Path], TaskData]], Callable]:
    """Decorate a task's ``load(root) -> TaskData`` to enter it in the table; returns `load` unchanged."""

    def decorate(load: Callable[[str | Path], TaskData]) -> Callable[[str | Path], TaskData]:
        if name in TASKS:
            raise ValueError(f"task {name!r} is already registered (by {TASKS[name].load.__module__})")
        TASKS[name] = TaskSpec(name, num_classes, load, description, tuple(archives), trainable)
        return load

    return decorate


def task_names() -> list[str]:
    """Every registered task, trainable or not, in registration order."""
    return list(TASKS)


def get_task(task: str) -> TaskSpec:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return TASKS[task]


def load_task(task: str, root: str | Path) -> TaskData:
    """Train / test samples and class names of `task` read from `root`.

    `demo` generates its dataset under `root` on first use. Raises `DatasetNotFound`.
    """
    return get_task(task).load(root)


class _HeadSizes(Mapping[str, int]):
    """Task -> class count of the trainable tasks: a live, read-only view of `TASKS`."""

    def __getitem__(self, task: str) -> int:
        spec = TASKS.get(task)
        if spec is None or not spec.trainable:
            raise KeyError(task)
        return spec.num_classes

    def __iter__(self) -> Iterator[str]:
        return (name for name, spec in TASKS.items() if spec.trainable)

    def __len__(self) -> int:
        return sum(spec.trainable for spec in TASKS.values())

    def __repr__(self) -> str:
        return repr(dict(self))


# What a run's ``data.task`` / a study spec's ``task`` is checked against and takes the head size from.
NUM_CLASSES: Mapping[str, int] = _HeadSizes()


def task_classes(task: str) -> int:
    """The class count of a task a run may train on; any other raises `ConfigError` naming ``data.task``."""
    if task not in NUM_CLASSES:
        raise ConfigError("data.task", f"unknown task {task!r}; known: {', '.join(NUM_CLASSES)}")
    return NUM_CLASSES[task]


def head_size(cfg: RunConfig) -> int:
    """The classifier width of `cfg`: ``model.num_classes`` when set, else its task's class count.

    Its task is checked either way, so a config naming no trainable task fails wherever it
    is trained, measured or searched (`ConfigError`, ``data.task``).
    """
    classes = task_classes(cfg.data.task)
    return cfg.model.num_classes or classes


def read_rows(path: Path, form: str = "<id> <value>") -> list[tuple[int, str, str]]:
    """`<id> <rest of line>` rows as (line number, id, rest); blank lines skipped.

    The rest may itself hold spaces. A line without both parts raises `DatasetError`
    quoting the expected `form`.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split(None, 1)
            if len(parts) != 2:
                raise DatasetError(path, lineno, f"expected '{form}', got {line.strip()!r}")
            rows.append((lineno, parts[0], parts[1].strip()))
    return rows


def int_id(path: Path, lineno: int, text: str, what: str = "id") -> int:
    try:
        return int(text)
    except ValueError:
        raise DatasetError(path, lineno, f"{what} {text!r} is not an integer") from None


def find_root(root: str | Path, top: str, marker: str, task: str) -> Path:
    """Resolve `root` given as the archive's top folder or as its parent.

    `marker` is a file relative to the top folder; its absence raises `DatasetNotFound`
    naming where it was expected under the parent form (the form `download` creates).
    """
    root = Path(root).expanduser()
    for candidate in (root, root / top):
        if (candidate / marker).is_file():
            return candidate
    raise DatasetNotFound(task, root / top / marker, root)


def require(base: Path, names: Sequence[str], task: str, root: str | Path) -> None:
    for name in names:
        if not (base / name).exists():
            raise DatasetNotFound(task, base / name, root)


def check_counts(name: str, counts: dict[str, int], expected: dict[str, int]) -> None:
    """Warn (never fail) when a complete dataset's split sizes differ from the official ones.

    People prune broken images, so a mismatch is worth a look, not a stopped run.
    """
    wrong = {k: (counts[k], v) for k, v in expected.items() if counts[k] != v}
    if wrong:
        detail = ", ".join(f"{k} has {got} images, official {want}" for k, (got, want) in wrong.items())
        warnings.warn(f"{name}: {detail}", stacklevel=3)
