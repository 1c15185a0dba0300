"""Train and eval transforms (torchvision.transforms.v2) from the augmentation config.

The paper resizes straight to a square (no crop) and augments with flip, rotation and
colour jitter, each with its own probability. A transform whose probability is 0 is left
out, so a config without augmentation gives a deterministic pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
from timm.models import get_pretrained_cfg
from torchvision.transforms import v2

from fgmodel.config import AugmentConfig, ConfigError, RunConfig

__all__ = ["build_transforms", "eval_transform", "norm_stats", "train_transform"]

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


def train_transform(aug: AugmentConfig, image_size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """PIL image -> augmented, normalised float32 tensor (3, image_size, image_size)."""
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
    return v2.Compose(steps + _to_tensor(mean, std))


def eval_transform(image_size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """PIL image -> normalised float32 tensor (3, image_size, image_size), no randomness."""
    return v2.Compose([v2.Resize((image_size, image_size), antialias=True), *_to_tensor(mean, std)])


def build_transforms(cfg: RunConfig) -> tuple[v2.Compose, v2.Compose]:
    """(train, eval) transforms for a run, normalised with the pretrained weights' stats."""
    source = cfg.model.pretrained
    stats_of = source if source.partition(".")[0] == cfg.model.backbone else cfg.model.backbone
    mean, std = norm_stats(stats_of)
    size = cfg.data.image_size
    return train_transform(cfg.augment, size, mean, std), eval_transform(size, mean, std)


def _with_p(transform: v2.Transform, p: float) -> v2.Transform:
    return transform if p >= 1 else v2.RandomApply([transform], p=p)


def _to_tensor(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
