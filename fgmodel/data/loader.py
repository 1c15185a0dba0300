"""`build_loaders(cfg)`: the train and eval DataLoaders of a run, per the data contract."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.data import DataLoader

from fgmodel.config import RunConfig
from fgmodel.data._registry import Sample, head_size, load_task
from fgmodel.data.cache import CachedDataset
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
        drop_last=False,
        **extra,
    )


def build_loaders(
    cfg: RunConfig, *, batch_size: int | None = None, pin_memory: bool = False
) -> Loaders:
    """Train (shuffled, seeded) and eval loaders yielding (images, labels, n_bad) batches.

    The train loader's sampler is an `EpochSampler`: call ``loaders.train.sampler.set_epoch(s)``
    before each epoch and its order and augmentations depend on `s` alone, whatever the
    number of (persistent) workers.

    Images are decoded at no less than `cfg.data.image_size` (JPEG draft mode) and then
    go through `fgmodel.augment.build_transforms(cfg)`. With `cfg.data.cache_dir`, they are decoded
    and resized once into a raw-pixel cache there (`fgmodel.data.cache`) and read from it
    on every epoch. `pin_memory` only takes effect when CUDA is available.
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
