"""Train and eval transforms (torchvision.transforms.v2) from the augmentation config.

The paper resizes straight to a square (no crop) and augments with flip, rotation and
colour jitter, each with its own probability. A transform whose probability is 0 is left
out, so a config without augmentation gives a deterministic pipeline.

The transforms run in the loader's workers and stop at a uint8 (3, S, S) tensor: the
conversion to float and the normalisation with `input_stats` happen on the training device
(`fgmodel._train_step.Normalize`), where they cost nothing next to the model, and a worker
gives 1.15x (decoding JPEGs) to 1.27x (from the pixel cache) the images/s of the float path
at 224 px (bench/loader.py). The augmentations themselves stay in the workers (PIL, seeded
per sample, as the resume guarantee needs): the colour jitter is most of a worker's time
from the cache (~2.4 of ~3 ms an image at 224 px on this machine's CPU), but a worker still
gives ~330 images/s, so about seven keep a GPU at 2,000 images/s fed, where the same
jitter on the GPU would take its time from the one resource a search is short of.
"""

from __future__ import annotations

import timm
from timm.models import get_pretrained_cfg
from torchvision.transforms import v2

from fgmodel.config import AugmentConfig, ConfigError, RunConfig

__all__ = ["build_transforms", "eval_transform", "input_stats", "norm_stats", "train_transform"]

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]


def norm_stats(backbone: str) -> Stats:
    """(mean, std) of a timm architecture (``convnextv2_large``) or tag (``arch.tag``)."""
    arch = backbone.partition(".")[0]
    if not timm.is_model(arch):
        raise ConfigError("model.backbone", f"timm has no model {arch!r}")
    try:
        cfg = get_pretrained_cfg(backbone)
    except RuntimeError:  # an unknown tag: the architecture's default weights
        cfg = get_pretrained_cfg(arch)
    if cfg is None:
        raise ConfigError("model.backbone", f"timm has no pretrained config for {backbone!r}")
    return tuple(cfg.mean), tuple(cfg.std)  # type: ignore[return-value]


def train_transform(aug: AugmentConfig, image_size: int) -> v2.Compose:
    """PIL image -> augmented uint8 tensor (3, image_size, image_size)."""
    steps: list[v2.Transform] = [v2.Resize((image_size, image_size), antialias=True)]
    if aug.hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=aug.hflip_p))
    if aug.rotation_p > 0 and aug.rotation_deg > 0:
        rotation = v2.RandomRotation(aug.rotation_deg, interpolation=v2.InterpolationMode.BILINEAR)
        steps.append(_with_p(rotation, aug.rotation_p))
    if aug.jitter_p > 0 and any((aug.brightness, aug.contrast, aug.saturation, aug.hue)):
        jitter = v2.ColorJitter(brightness=aug.brightness, contrast=aug.contrast, saturation=aug.saturation,
                                hue=aug.hue)
        steps.append(_with_p(jitter, aug.jitter_p))
    return v2.Compose([*steps, v2.ToImage()])


def eval_transform(image_size: int) -> v2.Compose:
    """PIL image -> uint8 tensor (3, image_size, image_size), no randomness."""
    return v2.Compose([v2.Resize((image_size, image_size), antialias=True), v2.ToImage()])


def build_transforms(cfg: RunConfig) -> tuple[v2.Compose, v2.Compose]:
    """(train, eval) transforms of a run; `input_stats` normalises their output on the device."""
    size = cfg.data.image_size
    return train_transform(cfg.augment, size), eval_transform(size)


def input_stats(cfg: RunConfig) -> Stats:
    """(mean, std) the run's images are normalised with: its pretrained weights' (a timm tag of its
    backbone), else its backbone's default weights'."""
    source = cfg.model.pretrained
    return norm_stats(source if source.partition(".")[0] == cfg.model.backbone else cfg.model.backbone)


def _with_p(transform: v2.Transform, p: float) -> v2.Transform:
    return transform if p >= 1 else v2.RandomApply([transform], p=p)
