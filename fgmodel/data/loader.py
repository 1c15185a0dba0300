"""`build_loaders(cfg)`: the train and eval DataLoaders of a run, per the data contract; `build_caches(cfg)`:
their pixel caches, ahead of the first trial."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader

from fgmodel.config import RunConfig
from fgmodel.data._registry import Sample, head_size, load_task
from fgmodel.data.cache import CachedDataset, build_cache, resolve_dir
from fgmodel.data.images import EpochSampler, ImageDataset, collate
from fgmodel.data.split import split_train_val

PREFETCH_FACTOR = 4  # batches queued per worker: rides out slow files without much memory


class Loaders(NamedTuple):
    train: DataLoader
    eval: DataLoader


def task_splits(cfg: RunConfig) -> tuple[list[Sample], list[Sample]]:
    """(train, eval) samples: the seeded split of train for the search, or train / test."""
    data = load_task(cfg.data.task, cfg.data.root)
    if cfg.data.eval_on == "test":
        return data.train, data.test
    seed = cfg.optim.seed if cfg.data.split_seed is None else cfg.data.split_seed
    return split_train_val(data.train, cfg.data.val_fraction, seed)


def train_drop_last(n: int, batch_size: int) -> bool:
    """Whether the train loader drops an epoch's short last batch: yes, unless that leaves no batch.

    A compiled model recompiles for a new batch shape, so a short last batch would cost a
    compilation (and a second graph) per run. It is dropped always, not only when compiling:
    ``model.compile`` is a speed setting that a resume may change and that defaults by
    device, so the images an epoch trains on must not depend on it. The cost is under one
    batch an epoch, a different one each epoch (the order is reshuffled), so no image is left
    out for good. A training set smaller than one batch keeps its only, short batch.
    """
    return n >= batch_size


def _loader(dataset: ImageDataset, batch_size: int, shuffle: bool, workers: int, pin: bool, seed: int) -> DataLoader:
    extra = {"persistent_workers": True, "prefetch_factor": PREFETCH_FACTOR} if workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        # train: order and per-sample augmentation seeds from (seed, epoch), see EpochSampler
        sampler=EpochSampler(len(dataset), shuffle=True, seed=seed) if shuffle else None,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        # its own generator: a (persistent) iterator's start draws the workers' base seed
        # from it, which must not shift the main process's RNG (dropout) on resume
        generator=torch.Generator().manual_seed(seed),
        # eval: every image (fit pads a short last batch when compiled)
        drop_last=shuffle and train_drop_last(len(dataset), batch_size),
        **extra,
    )


def build_loaders(
    cfg: RunConfig, *, batch_size: int | None = None, pin_memory: bool = False
) -> Loaders:
    """Train (shuffled, seeded, short last batch dropped: `train_drop_last`) and eval loaders yielding
    (images, labels, n_bad) batches, images uint8 (N, 3, S, S) laid out channels_last.

    The train loader's sampler is an `EpochSampler`: call ``loaders.train.sampler.set_epoch(s)``
    before each epoch and its order and augmentations depend on `s` alone, whatever the
    number of (persistent) workers.

    Images are decoded at no less than `cfg.data.image_size` (JPEG draft mode) and then
    go through `fgmodel.augment.build_transforms(cfg)`; the float conversion and normalisation
    are the training device's (`fgmodel._train_step.Normalize`). With `cfg.data.cache_dir`, they
    are decoded and resized once into a raw-pixel cache there (`fgmodel.data.cache`) and read
    from it on every epoch. `pin_memory` only takes effect when CUDA is available.
    """
    from fgmodel.augment import build_transforms

    num_classes = head_size(cfg)  # first: an untrainable task is a ConfigError, not a missing dataset
    train_samples, eval_samples = task_splits(cfg)
    top = max(s.label for s in train_samples + eval_samples)
    if top >= num_classes:
        raise ValueError(f"task {cfg.data.task} has label {top} but the head has {num_classes} classes")
    train_tf, eval_tf = build_transforms(cfg)
    size = cfg.data.image_size
    batch = batch_size or cfg.optim.batch_size
    workers = cfg.data.num_workers
    pin = pin_memory and torch.cuda.is_available()
    cache_dir = cfg.data.cache_dir

    def dataset(samples: list[Sample], transform) -> ImageDataset:
        if cache_dir is None:
            return ImageDataset(samples, transform, size)
        return CachedDataset(samples, transform, size, cache_dir, workers=max(workers, 1))

    return Loaders(
        train=_loader(dataset(train_samples, train_tf), batch, True, workers, pin, cfg.optim.seed),
        eval=_loader(dataset(eval_samples, eval_tf), batch, False, workers, pin, cfg.optim.seed),
    )


def build_caches(cfg: RunConfig, *, image_sizes: Iterable[int] | None = None, workers: int | None = None,
                 progress: bool = True) -> RunConfig:
    """Build the pixel caches `build_loaders(cfg)` reads, now, and return `cfg` with its cache folder absolute.

    A search's pre-flight calls this once in its driver before the first trial, with a
    progress bar, and gives the trials the returned config: its ``data.cache_dir`` is resolved
    here, not in each Ray trial's working directory, and each trial finds its cache finished.
    `image_sizes`: every size the trials may train at (default: ``cfg.data.image_size``);
    `workers`: decoding processes (default: all cores). Without ``data.cache_dir``: `cfg`, nothing built.
    """
    if cfg.data.cache_dir is None:
        return cfg
    cache_dir = resolve_dir(cfg.data.cache_dir)
    train, held_out = task_splits(cfg)
    for size in dict.fromkeys(image_sizes or (cfg.data.image_size,)):
        for samples in (train, held_out):
            build_cache(samples, size, cache_dir, workers, progress)
    return cfg.replace(**{"data.cache_dir": str(cache_dir)})
