"""Tiny dataset trees in each official layout, with the real files' quirks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fgmodel.config import DataConfig, ModelConfig, OptimConfig, RunConfig


def jpeg(path: Path, size: tuple[int, int] = (40, 40), seed: int = 0, banner: int = 0) -> Path:
    """A noisy JPEG; the bottom `banner` rows pure white, like FGVC-Aircraft's strip."""
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    if banner:
        pixels[h - banner :] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)
    return path


def make_cub(parent: Path, per_class: tuple[int, ...] = (3, 4, 5), train_every: int = 2) -> Path:
    """CUB_200_2011/ with len(per_class) classes; ids 1-based; every `train_every`-th image is test."""
    top = parent / "CUB_200_2011"
    names = [f"{i + 1:03d}.Bird_{chr(65 + i)}" for i in range(len(per_class))]
    images, labels, split = [], [], []
    image_id = 0
    for c, n in enumerate(per_class):
        for k in range(n):
            image_id += 1
            rel = f"{names[c]}/{names[c][4:]}_{k:04d}_{image_id}.jpg"
            jpeg(top / "images" / rel, seed=image_id)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {c + 1}")
            split.append(f"{image_id} {0 if k % train_every == 1 else 1}")
    (top / "images.txt").write_text("\n".join(images) + "\n")
    (top / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (top / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (top / "classes.txt").write_text("\n".join(f"{i + 1} {n}" for i, n in enumerate(names)) + "\n")
    return top


AIRCRAFT_VARIANTS = ["Cessna 172", "Boeing 737-700", "F-16A/B"]


def make_aircraft(parent: Path, trainval: int = 2, test: int = 1) -> Path:
    """fgvc-aircraft-2013b/data/ with variant names holding spaces and a 20-row banner."""
    data = parent / "fgvc-aircraft-2013b" / "data"
    (data / "variants.txt").parent.mkdir(parents=True, exist_ok=True)
    (data / "variants.txt").write_text("\n".join(AIRCRAFT_VARIANTS) + "\n")
    rows: dict[str, list[str]] = {"trainval": [], "test": []}
    image_id = 1000000
    for v, name in enumerate(AIRCRAFT_VARIANTS):
        for split, n in (("trainval", trainval), ("test", test)):
            for _ in range(n):
                image_id += 1
                jpeg(data / "images" / f"{image_id:07d}.jpg", size=(40, 60), seed=image_id, banner=20)
                rows[split].append(f"{image_id:07d} {name}")
    for split, lines in rows.items():
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return data.parent


def make_foodx(top: Path, train: tuple[int, ...] = (3, 2, 2, 1), val: int = 1) -> Path:
    """FoodX-251 files: 0-based class_list.txt, header-less CSVs, train_set/ and val_set/."""
    top.mkdir(parents=True, exist_ok=True)
    names = ["macaron", "beignet", "cruller", "cockle_food"][: len(train)]
    (top / "class_list.txt").write_text("\n".join(f"{i} {n}" for i, n in enumerate(names)) + "\n")
    train_rows, val_rows = [], []
    k = 0
    for label, n in enumerate(train):
        for _ in range(n):
            k += 1
            jpeg(top / "train_set" / f"train_{k:06d}.jpg", seed=k)
            train_rows.append(f"train_{k:06d}.jpg,{label}")
        for _ in range(val):
            k += 1
            jpeg(top / "val_set" / f"val_{k:06d}.jpg", seed=k)
            val_rows.append(f"val_{k:06d}.jpg,{label}")
    (top / "train_info.csv").write_text("\n".join(train_rows) + "\n")
    (top / "val_info.csv").write_text("\n".join(val_rows) + "\n")
    (top / "test_info.csv").write_text("test_000001.jpg\n")
    return top


def demo_config(root: Path, **overrides) -> RunConfig:
    """Dropout, L2SP, augmentation and a stepping scheduler on: resume has to restore them all."""
    base = RunConfig(
        model=ModelConfig(backbone="convnextv2_atto", dropout=0.2),
        optim=OptimConfig(optimizer="adamw", lr=1e-3, weight_decay=0.0, step_size=1, gamma=0.5, epochs=2,
                          batch_size=32, l2sp_lambda=1e-3, seed=3),
        data=DataConfig(task="demo", root=str(root), image_size=32, num_workers=0),
    )
    aug = {"augment.hflip_p": 0.5, "augment.rotation_deg": 10.0, "augment.rotation_p": 0.5,
           "augment.brightness": 0.2, "augment.jitter_p": 0.5}
    return base.replace(**aug, **overrides)
