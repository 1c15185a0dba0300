"""Datasets of the paper's tasks read from their official archives, plus a generated demo.

`load_task(task, root)` -> `TaskData(train, test, classes)` of `Sample(path, label,
crop_bottom)`, raising `DatasetNotFound` / `DatasetError` (malformed file, with its line);
`split_train_val` carves the search's validation split; `build_loaders`
turns a `RunConfig` into DataLoaders of `(images, labels, n_bad)` batches.
CLI: ``python -m fgmodel.data download|check TASK --root DIR``.
"""

from fgmodel.data.images import EpochSampler, ImageDataset, collate, load_image
from fgmodel.data.loader import Loaders, build_loaders, task_splits
from fgmodel.data.registry import DatasetError, DatasetNotFound, Sample, TaskData, TaskSpec, get_task, load_task, task_names
from fgmodel.data.split import split_train_val

__all__ = [
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
    "load_image",
    "load_task",
    "split_train_val",
    "task_names",
    "task_splits",
]
