"""The `demo` task: a generated fine-grained dataset in the CUB-200-2011 on-disk layout.

Twenty classes share one shape (a bird: body, head, beak, tail, wing) and differ only in
a small mark: its colour (5) times where on the bird it sits (crown, wing, tail, belly).
Everything else varies and carries no label: body colour, gradient background, clutter,
a same-palette distractor dot off the bird, position, scale, facing, tilt, noise. So the
colour alone is ambiguous and the model has to find the bird and where the mark is on it,
as in the real fine-grained sets. Like CUB (about 30 training images a class), it is small:
40 training images a class, 30 of them in a search's training split. The demo fine-tunes a
backbone pretrained on other generated classes (`fgmodel.pretrain_demo`), as the paper
fine-tunes ImageNet weights.

Written once under `ROOT/demo/v<VERSION>-seed<seed>/CUB_200_2011/` (temp dir + atomic rename, so two processes
starting together both end up reading one complete copy) and read back by the `cub`
loader, so the demo exercises the real loading path. Image `i` depends only on
(seed, i): the same seed gives the same bytes in any process.
"""

from __future__ import annotations

import colorsys
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fgmodel.data import cub
from fgmodel.data._registry import TaskData, register_task

log = logging.getLogger(__name__)

FOLDER = "demo"
SEED = 0
PER_CLASS = 60
TRAIN_PER_CLASS = 40  # 800 training images (600 + 200 in a search's split at val_fraction 0.25), 400 test
VERSION = 5
COLOURS = {
    "red": (215, 35, 35),
    "blue": (35, 85, 225),
    "yellow": (235, 215, 30),
    "green": (35, 170, 60),
    "magenta": (200, 45, 200),
}
POSITIONS = ("crown", "wing", "tail", "belly")
CLASSES = [f"{c}_{p}" for c in COLOURS for p in POSITIONS]
SUPERSAMPLE = 2  # drawn at twice the size, then reduced: anti-aliased edges for free

# The demo task runs on a laptop CPU: switching a paper config to it also switches to
# these (tiny backbone, small images, the demo's own pretraining, its schedule), as in
# studies/demo.yaml, and the CLIs say so when they do.
DEMO_PROFILE: dict[str, object] = {
    "model.backbone": "convnextv2_atto",
    "model.pretrained": "demo",  # fgmodel.pretrain_demo, made under data.root on first use
    "data.image_size": 40,
    "optim.batch_size": 32,
    "optim.lr": 5e-4,
    "optim.epochs": 8,
    "optim.step_size": 6,  # the paper's StepLR (x0.1), once, for the last two epochs
}


def muted(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> tuple[int, int, int]:
    """A random hue at saturation and value drawn from `s` and `v` (shared with `demo_source`)."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*s), rng.uniform(*v))
    return int(r * 255), int(g * 255), int(b * 255)


def background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A two-colour gradient with clutter: the scene both generated sets draw their objects on."""
    c0 = np.array(muted(rng, (0.1, 0.5), (0.3, 0.9)), dtype=np.float32)
    c1 = np.array(muted(rng, (0.1, 0.5), (0.3, 0.9)), dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    canvas = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(4, 11))):  # clutter: leaves, twigs, stones
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.03, 0.15) * w
        fill = muted(rng, (0.0, 0.45), (0.2, 0.95))
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r * rng.uniform(0.3, 1), x + r, y + r * rng.uniform(0.3, 1)], fill=fill)
        else:
            end = (x + rng.uniform(-2, 2) * r, y + rng.uniform(-2, 2) * r)
            draw.line([x, y, *end], fill=fill, width=int(rng.integers(2, 7)))
    return canvas


def _bird(rng: np.random.Generator, length: float, mark_rgb: tuple[int, int, int], position: str) -> Image.Image:
    """An RGBA bird facing right, body centred in a (2.2 L x 1.4 L) layer."""
    L = length
    layer = Image.new("RGBA", (int(2.2 * L), int(1.4 * L)), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    cx, cy = 1.0 * L, 0.75 * L
    body = muted(rng, (0.1, 0.35), (0.35, 0.75))
    wing = tuple(int(c * 0.7) for c in body)
    hx, hy, hr = cx + 0.55 * L, cy - 0.22 * L, 0.17 * L
    tail = [(cx - 0.4 * L, cy - 0.05 * L), (cx - 0.85 * L, cy - 0.22 * L), (cx - 0.85 * L, cy + 0.12 * L)]
    d.polygon(tail, fill=wing)
    d.ellipse([cx - 0.5 * L, cy - 0.28 * L, cx + 0.5 * L, cy + 0.28 * L], fill=body)
    d.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=body)
    beak = [(hx + 0.9 * hr, hy - 0.25 * hr), (hx + 1.9 * hr, hy + 0.1 * hr), (hx + 0.9 * hr, hy + 0.4 * hr)]
    d.polygon(beak, fill=(60, 50, 40))
    d.ellipse([cx - 0.3 * L, cy - 0.2 * L, cx + 0.2 * L, cy + 0.05 * L], fill=wing)
    er = 0.035 * L
    d.ellipse([hx + 0.3 * hr - er, hy - 0.2 * hr - er, hx + 0.3 * hr + er, hy - 0.2 * hr + er], fill=(15, 15, 15))
    mx, my, mr = {
        "crown": (hx - 0.1 * hr, hy - 0.75 * hr, 0.13 * L),
        "wing": (cx - 0.05 * L, cy - 0.08 * L, 0.14 * L),
        "tail": (cx - 0.7 * L, cy - 0.05 * L, 0.13 * L),
        "belly": (cx + 0.15 * L, cy + 0.17 * L, 0.14 * L),
    }[position]
    mark = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in mark_rgb)
    d.ellipse([mx - mr, my - mr, mx + mr, my + mr], fill=mark)
    if rng.random() < 0.5:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return layer.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR, expand=True)


def render(seed: int, index: int, label: int) -> Image.Image:
    """Image `index` of class `label`: a pure function of its arguments."""
    rng = np.random.default_rng([seed, VERSION, index])
    w, h = int(rng.integers(80, 97)), int(rng.integers(64, 81))
    W, H = w * SUPERSAMPLE, h * SUPERSAMPLE
    canvas = background(rng, W, H)
    colour, position = CLASSES[label].split("_")
    draw = ImageDraw.Draw(canvas)
    if rng.random() < 0.3:  # a mark-coloured dot that is not on the bird
        r = 0.045 * W
        x, y = rng.uniform(r, W - r), rng.uniform(r, H - r)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=list(COLOURS.values())[int(rng.integers(len(COLOURS)))])
    bird = _bird(rng, rng.uniform(0.38, 0.52) * W, COLOURS[colour], position)
    bw, bh = bird.size
    x = int(rng.integers(0, max(W - bw, 0) + 1))
    y = int(rng.integers(0, max(H - bh, 0) + 1))
    canvas.paste(bird, (x, y), bird)
    small = canvas.resize((w, h), Image.Resampling.BOX)
    noise = rng.normal(0.0, rng.uniform(4, 14), size=(h, w, 3))
    return Image.fromarray(np.clip(np.asarray(small, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def write(dest: Path, seed: int = SEED, per_class: int | None = None, train_per_class: int | None = None) -> None:
    """Write the dataset in CUB layout into `dest` (the future `CUB_200_2011/` folder).

    Sizes default to the module's `PER_CLASS` / `TRAIN_PER_CLASS`, read at call time (tests
    shrink them).
    """
    per_class = PER_CLASS if per_class is None else per_class
    train_per_class = TRAIN_PER_CLASS if train_per_class is None else train_per_class
    images_dir = dest / "images"
    lines: dict[str, list[str]] = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    image_id = 0
    for label, name in enumerate(CLASSES):
        class_dir = f"{label + 1:03d}.{name}"
        (images_dir / class_dir).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            image_id += 1
            rel = f"{class_dir}/{name}_{k:04d}.jpg"
            render(seed, image_id, label).save(images_dir / rel, quality=88)
            lines["images.txt"].append(f"{image_id} {rel}")
            lines["image_class_labels.txt"].append(f"{image_id} {label + 1}")
            lines["train_test_split.txt"].append(f"{image_id} {int(k < train_per_class)}")
    lines["classes.txt"] = [f"{i + 1} {i + 1:03d}.{n}" for i, n in enumerate(CLASSES)]
    for fname, rows in lines.items():
        (dest / fname).write_text("\n".join(rows) + "\n")
    meta = {"generator": "fgmodel.data.demo", "version": VERSION, "seed": seed, "per_class": per_class,
            "train_per_class": train_per_class}
    (dest / "demo.json").write_text(json.dumps(meta, indent=1) + "\n")


def ensure(root: str | Path, seed: int = SEED) -> Path:
    """`ROOT/demo/v<VERSION>-seed<seed>` holding a complete `CUB_200_2011/`, generated on first use.

    The version and seed name the folder, so a changed generator never reads a stale copy.

    Concurrent callers each generate into their own temp dir and rename it into place;
    the first rename wins, the others discard their copy and read the winner's.
    """
    base = Path(root).expanduser() / FOLDER / f"v{VERSION}-seed{seed}"
    final = base / cub.TOP
    if final.is_dir():
        return base
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    try:
        log.info("generating the demo dataset in %s", final)
        write(tmp / cub.TOP, seed)
        try:
            os.rename(tmp / cub.TOP, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return base


@register_task("demo", num_classes=len(CLASSES), description="generated 20-class fine-grained set, CUB layout")
def load(root: str | Path) -> TaskData:
    return cub.load(ensure(root), task="demo")
