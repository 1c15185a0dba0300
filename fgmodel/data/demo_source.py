"""The demo's source task: generated coarse categories to pretrain its backbone on.

The real recipe fine-tunes an ImageNet-pretrained backbone; the demo's stand-in is a
set drawn by the same kind of renderer as `fgmodel.data.demo` (gradient backgrounds,
clutter, a distractor, position, scale, facing, tilt, noise), whose classes are not the
demo's: what an object is (ten kinds: bird, fish, butterfly, flower, tree, house, car,
mushroom, boat, kite) times its main colour (six hue bands), 60 classes. The bird is one
kind among ten, as birds are a few of ImageNet's classes, and carries no mark: the
demo's labels (a mark's colour and place on the bird) are never a source label, so
what transfers is how to find an object, its parts and colours, not the answer.

Images stay in memory (`images`): only the pretrained weights are written
(`fgmodel.pretrain_demo`). Image `i` depends only on (seed, i), as in the demo.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from fgmodel.data.demo import SUPERSAMPLE, background, muted

VERSION = 1  # bump when the drawings change: the weights' folder is named by it
_STREAM = 7  # keeps these images' random streams apart from the demo's for the same (seed, index)

Colour = tuple[int, int, int]
Draw = Callable[[ImageDraw.ImageDraw, np.random.Generator, float, Colour], None]

HUES = {"red": 0.0, "orange": 0.075, "yellow": 0.155, "green": 0.33, "blue": 0.6, "purple": 0.77}


def _shade(rgb: Colour, f: float) -> Colour:
    return tuple(int(np.clip(c * f, 0, 255)) for c in rgb)  # type: ignore[return-value]


def _bird(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    cx, cy = 1.0 * L, 0.75 * L
    hx, hy, hr = cx + 0.5 * L, cy - 0.25 * L, 0.16 * L
    tail = [(cx - 0.35 * L, cy), (cx - 0.8 * L, cy - 0.25 * L), (cx - 0.8 * L, cy + 0.15 * L)]
    d.polygon(tail, fill=_shade(main, 0.7))
    d.ellipse([cx - 0.45 * L, cy - 0.25 * L, cx + 0.45 * L, cy + 0.25 * L], fill=main)
    d.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=main)
    d.polygon([(hx + 0.9 * hr, hy - 0.2 * hr), (hx + 1.8 * hr, hy + 0.1 * hr), (hx + 0.9 * hr, hy + 0.4 * hr)],
              fill=(60, 50, 40))
    er = 0.035 * L
    d.ellipse([hx + 0.3 * hr - er, hy - 0.2 * hr - er, hx + 0.3 * hr + er, hy - 0.2 * hr + er], fill=(15, 15, 15))


def _fish(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    cx, cy = 1.05 * L, 0.7 * L
    tail = [(cx - 0.45 * L, cy), (cx - 0.9 * L, cy - 0.3 * L), (cx - 0.9 * L, cy + 0.3 * L)]
    d.polygon(tail, fill=_shade(main, 0.75))
    d.polygon([(cx - 0.1 * L, cy - 0.2 * L), (cx + 0.15 * L, cy - 0.45 * L), (cx + 0.25 * L, cy - 0.2 * L)],
              fill=_shade(main, 0.75))
    d.ellipse([cx - 0.55 * L, cy - 0.25 * L, cx + 0.55 * L, cy + 0.25 * L], fill=main)
    er = 0.04 * L
    d.ellipse([cx + 0.33 * L - er, cy - 0.07 * L - er, cx + 0.33 * L + er, cy - 0.07 * L + er], fill=(15, 15, 15))


def _butterfly(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    cx, cy = 1.1 * L, 0.7 * L
    for sx in (-1, 1):
        xa, xb = sorted([cx, cx + sx * 0.55 * L])
        d.ellipse([xa, cy - 0.55 * L, xb, cy + 0.05 * L], fill=main)
        xa, xb = sorted([cx, cx + sx * 0.4 * L])
        d.ellipse([xa, cy - 0.05 * L, xb, cy + 0.45 * L], fill=_shade(main, 0.8))
    d.line([cx, cy - 0.45 * L, cx, cy + 0.4 * L], fill=(30, 25, 20), width=max(int(0.07 * L), 1))


def _flower(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    cx, cy = 1.1 * L, 0.5 * L
    d.line([cx, cy, cx + 0.05 * L, cy + 0.85 * L], fill=(40, 120, 40), width=max(int(0.06 * L), 1))
    n = int(rng.integers(5, 9))
    for k in range(n):
        a = 2 * np.pi * k / n
        px, py, r = cx + 0.22 * L * np.cos(a), cy + 0.22 * L * np.sin(a), 0.15 * L
        d.ellipse([px - r, py - r, px + r, py + r], fill=main)
    r = 0.1 * L
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(90, 60, 20))


def _tree(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    cx, cy = 1.1 * L, 0.55 * L
    d.rectangle([cx - 0.07 * L, cy, cx + 0.07 * L, cy + 0.8 * L], fill=(95, 65, 35))
    for dx, dy, r in ((0.0, -0.1, 0.35), (-0.25, 0.1, 0.25), (0.25, 0.1, 0.25)):
        d.ellipse([cx + (dx - r) * L, cy + (dy - r) * L, cx + (dx + r) * L, cy + (dy + r) * L], fill=main)


def _house(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    x0, y0, x1, y1 = 0.7 * L, 0.55 * L, 1.5 * L, 1.15 * L
    d.rectangle([x0, y0, x1, y1], fill=main)
    d.polygon([(x0 - 0.1 * L, y0), ((x0 + x1) / 2, y0 - 0.4 * L), (x1 + 0.1 * L, y0)], fill=(110, 45, 35))
    d.rectangle([x0 + 0.1 * L, y1 - 0.35 * L, x0 + 0.3 * L, y1], fill=(70, 45, 25))
    d.rectangle([x1 - 0.32 * L, y0 + 0.12 * L, x1 - 0.12 * L, y0 + 0.3 * L], fill=(200, 220, 240))


def _car(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    x0, x1, y = 0.5 * L, 1.7 * L, 0.8 * L
    d.polygon([(x0 + 0.3 * L, y - 0.2 * L), (x0 + 0.45 * L, y - 0.45 * L), (x1 - 0.45 * L, y - 0.45 * L),
               (x1 - 0.25 * L, y - 0.2 * L)], fill=_shade(main, 0.8))
    d.rectangle([x0, y - 0.2 * L, x1, y + 0.12 * L], fill=main)
    d.rectangle([x0 + 0.55 * L, y - 0.4 * L, x1 - 0.5 * L, y - 0.22 * L], fill=(190, 210, 230))
    r = 0.13 * L
    for wx in (x0 + 0.28 * L, x1 - 0.28 * L):
        d.ellipse([wx - r, y + 0.12 * L - r, wx + r, y + 0.12 * L + r], fill=(20, 20, 20))


def _mushroom(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    cx, cy = 1.1 * L, 0.6 * L
    d.rectangle([cx - 0.1 * L, cy, cx + 0.1 * L, cy + 0.5 * L], fill=(225, 215, 190))
    d.pieslice([cx - 0.45 * L, cy - 0.4 * L, cx + 0.45 * L, cy + 0.4 * L], 180, 360, fill=main)
    for dx, dy in ((-0.2, -0.12), (0.05, -0.25), (0.22, -0.1)):
        r = 0.05 * L
        d.ellipse([cx + dx * L - r, cy + dy * L - r, cx + dx * L + r, cy + dy * L + r], fill=(240, 240, 235))


def _boat(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    y = 0.95 * L
    d.polygon([(0.45 * L, y - 0.15 * L), (1.75 * L, y - 0.15 * L), (1.5 * L, y + 0.15 * L), (0.7 * L, y + 0.15 * L)],
              fill=main)
    d.line([1.1 * L, y - 0.15 * L, 1.1 * L, y - 0.85 * L], fill=(60, 45, 30), width=max(int(0.04 * L), 1))
    d.polygon([(1.13 * L, y - 0.8 * L), (1.13 * L, y - 0.22 * L), (1.55 * L, y - 0.22 * L)], fill=(235, 235, 225))


def _kite(d: ImageDraw.ImageDraw, rng: np.random.Generator, L: float, main: Colour) -> None:
    cx, cy = 1.2 * L, 0.5 * L
    d.line([cx, cy + 0.45 * L, cx - 0.4 * L, cy + 0.8 * L, cx - 0.7 * L, cy + 0.7 * L], fill=(50, 40, 30),
           width=max(int(0.03 * L), 1))
    d.polygon([(cx, cy - 0.45 * L), (cx + 0.3 * L, cy), (cx, cy + 0.45 * L), (cx - 0.3 * L, cy)], fill=main)
    d.line([cx, cy - 0.45 * L, cx, cy + 0.45 * L], fill=_shade(main, 0.6), width=max(int(0.03 * L), 1))


KINDS: dict[str, Draw] = {
    "bird": _bird, "fish": _fish, "butterfly": _butterfly, "flower": _flower, "tree": _tree,
    "house": _house, "car": _car, "mushroom": _mushroom, "boat": _boat, "kite": _kite,
}
CLASSES = [f"{hue}_{kind}" for kind in KINDS for hue in HUES]


def _main_colour(rng: np.random.Generator, hue: float) -> Colour:
    h = (hue + rng.uniform(-0.03, 0.03)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.55, 0.95), rng.uniform(0.55, 0.95))
    return int(r * 255), int(g * 255), int(b * 255)


def _object(rng: np.random.Generator, kind: str, length: float, main: Colour) -> Image.Image:
    """An RGBA object in a (2.2 L x 1.4 L) layer, flipped and tilted like the demo's bird."""
    layer = Image.new("RGBA", (int(2.2 * length), int(1.4 * length)), (0, 0, 0, 0))
    KINDS[kind](ImageDraw.Draw(layer), rng, length, main)
    if rng.random() < 0.5:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return layer.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR, expand=True)


def _paste(rng: np.random.Generator, canvas: Image.Image, obj: Image.Image) -> None:
    W, H = canvas.size
    x = int(rng.integers(0, max(W - obj.width, 0) + 1))
    y = int(rng.integers(0, max(H - obj.height, 0) + 1))
    canvas.paste(obj, (x, y), obj)


def render(seed: int, index: int, label: int) -> Image.Image:
    """Image `index` of source class `label`: a pure function of its arguments.

    The same canvas sizes as the demo's (80-96 x 64-80 px), so both sets meet the same
    resize to the model's input. A third of the images hold a smaller, muted object of
    another kind as a distractor, so the label is the main object's, not any object's.
    """
    rng = np.random.default_rng([_STREAM, seed, VERSION, index])
    w, h = int(rng.integers(80, 97)), int(rng.integers(64, 81))
    W, H = w * SUPERSAMPLE, h * SUPERSAMPLE
    canvas = background(rng, W, H)
    hue, kind = CLASSES[label].split("_")
    if rng.random() < 0.33:
        other = str(rng.choice([k for k in KINDS if k != kind]))
        _paste(rng, canvas, _object(rng, other, rng.uniform(0.2, 0.28) * W, muted(rng, (0.1, 0.4), (0.3, 0.8))))
    _paste(rng, canvas, _object(rng, kind, rng.uniform(0.36, 0.5) * W, _main_colour(rng, HUES[hue])))
    small = canvas.resize((w, h), Image.Resampling.BOX)
    noise = rng.normal(0.0, rng.uniform(4, 14), size=(h, w, 3))
    return Image.fromarray(np.clip(np.asarray(small, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def images(seed: int, per_class: int, size: int, first: int = 0,
           progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class, resized to ``size`` px: (uint8 N x size x size x 3, int64 labels).

    Image ids run ``first + 1 ..``, class by class, so two calls with disjoint id ranges
    draw disjoint images (a training and a held-out set). The resize is the loader's
    (PIL bilinear with antialias, straight to a square). `progress(n)` is told every class.
    """
    n = per_class * len(CLASSES)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    for i in range(n):
        img = render(seed, first + i + 1, int(labels[i]))
        out[i] = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))
        if progress is not None and (i + 1) % per_class == 0:
            progress(per_class)
    return out, labels
