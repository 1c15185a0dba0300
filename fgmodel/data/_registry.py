"""Task registry: task name -> loader and head size, plus the shared sample types.

Every loader returns plain lists of `Sample` (path, label, rows to crop off the bottom),
so splitting, checking and loading never depend on which archive a sample came from.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from fgmodel.tasks import NUM_CLASSES


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


def read_rows(path: Path) -> list[tuple[int, str, str]]:
    """`<id> <rest of line>` rows as (line number, id, rest); blank lines skipped.

    The rest may itself hold spaces. A line without both parts raises `DatasetError`.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split(None, 1)
            if len(parts) != 2:
                raise DatasetError(path, lineno, f"expected '<id> <value>', got {line.strip()!r}")
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


@dataclass(frozen=True)
class TaskSpec:
    name: str
    num_classes: int
    load: Callable[[str | Path], TaskData]
    description: str


def _registry() -> dict[str, TaskSpec]:
    from fgmodel.data import aircraft, cub, cub_aircraft, demo, foodx

    specs = [
        TaskSpec("cub", NUM_CLASSES["cub"], cub.load, "CUB-200-2011"),
        TaskSpec("cub_aircraft", NUM_CLASSES["cub_aircraft"], cub_aircraft.load, "CUB-200-2011 + FGVC-Aircraft 2013b variants"),
        TaskSpec("foodx", NUM_CLASSES["foodx"], foodx.load, "FoodX-251 (iFood 2019), val as test"),
        TaskSpec("demo", NUM_CLASSES["demo"], demo.load, "generated 20-class fine-grained set, CUB layout"),
        # Not a paper task (no head size in fgmodel.tasks), but loadable and checkable alone.
        TaskSpec("aircraft", 100, aircraft.load, "FGVC-Aircraft 2013b variants"),
    ]
    return {s.name: s for s in specs}


def task_names() -> list[str]:
    return list(_registry())


def get_task(task: str) -> TaskSpec:
    specs = _registry()
    if task not in specs:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(specs)}")
    return specs[task]


def load_task(task: str, root: str | Path) -> TaskData:
    """Train / test samples and class names of `task` read from `root`.

    `demo` generates its dataset under `root` on first use. Raises `DatasetNotFound`.
    """
    return get_task(task).load(root)
