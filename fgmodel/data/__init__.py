"""Datasets of the paper's tasks read from their official archives, plus a generated demo.

`load_task(task, root)` -> `TaskData(train, test, classes)` of `Sample(path, label,
crop_bottom)`, raising `DatasetNotFound` / `DatasetError` (malformed file, with its line);
`split_train_val` carves the search's validation split; `build_loaders`
turns a `RunConfig` into DataLoaders of `(images, labels, n_bad)` batches.
CLI: ``python -m fgmodel.data download|check TASK --root DIR``.

Importing this package fills the task table (each loader module registers its task) but
loads no torch: the names that need it (`build_loaders`, `ImageDataset`, ...) are imported
on first use (PEP 562), so a study spec checks its task and `head_size` resolves a run's
class count cheaply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fgmodel.data import aircraft, cub, cub_aircraft, demo, foodx  # noqa: F401  (each registers its task)
from fgmodel.data._registry import (
    NUM_CLASSES,
    Archive,
    DatasetError,
    DatasetNotFound,
    Sample,
    TaskData,
    TaskSpec,
    get_task,
    head_size,
    load_task,
    register_task,
    task_classes,
    task_names,
)
from fgmodel.data.demo import DEMO_PROFILE
from fgmodel.data.split import split_train_val

if TYPE_CHECKING:
    from fgmodel.data.cache import CachedDataset
    from fgmodel.data.images import EpochSampler, ImageDataset, collate, load_image
    from fgmodel.data.loader import Loaders, build_loaders, task_splits

# Public names whose modules import torch: name -> module of fgmodel.data.
_LAZY = {
    "CachedDataset": "cache",
    "EpochSampler": "images",
    "ImageDataset": "images",
    "collate": "images",
    "load_image": "images",
    "Loaders": "loader",
    "build_loaders": "loader",
    "task_splits": "loader",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEMO_PROFILE",
    "NUM_CLASSES",
    "Archive",
    "CachedDataset",
    "DatasetError",
    "DatasetNotFound",
    "EpochSampler",
    "ImageDataset",
    "Loaders",
    "Sample",
    "TaskData",
    "TaskSpec",
    "build_loaders",
    "collate",
    "get_task",
    "head_size",
    "load_image",
    "load_task",
    "register_task",
    "split_train_val",
    "task_classes",
    "task_names",
    "task_splits",
]
