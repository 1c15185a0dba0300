"""The demo's pretrained weights: its backbone trained once on the generated source task.

The paper fine-tunes ImageNet weights; the demo cannot download any, so it makes its
own: `convnextv2_atto` trained from scratch on `fgmodel.data.demo_source` (60 coarse
classes, none of them the demo's) at the demo's image size, on the CPU, in about two
minutes. The result is an ordinary ``.safetensors`` state dict that `fgmodel.model`
loads like any local weights file (``model.pretrained: demo`` names it), so the demo
fine-tunes as the real tasks do and L2SP pulls toward weights that mean something.

Written once under ``ROOT/demo/pretrained-v<source>.<recipe>-seed<seed>/<backbone>.safetensors``
(temp file + atomic rename), with ``<backbone>.json`` beside it (the recipe, the
seconds it took, top-1 on held-out source images). The same seed gives the same
bytes: the images depend on (seed, index) only, the order and flips on a seeded
generator, the initial weights on ``torch.manual_seed(seed)``, and the run uses a fixed
number of threads (`Recipe.threads`; on the CPU the thread count changes how sums are
split, hence the low bits). The caller's RNG state and thread count are left as they were.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save
from tqdm import tqdm

from fgmodel._io import write_atomic
from fgmodel.augment import norm_stats
from fgmodel.cli import run_main
from fgmodel.data import demo_source

__all__ = ["BACKBONE", "NAME", "RECIPE", "Recipe", "ensure", "pretrain", "weights_path"]

log = logging.getLogger(__name__)

NAME = "demo"  # model.pretrained: demo -> these weights, for the config's backbone
BACKBONE = "convnextv2_atto"
SEED = 0
VERSION = 1  # bump when the recipe changes: the folder is named by it and by demo_source.VERSION
FOLDER = "demo"  # under the data root, beside the demo's data


@dataclass(frozen=True)
class Recipe:
    """How the source task is trained. The defaults fit about 2 minutes on 2 CPU cores."""

    per_class: int = 100  # training images per source class
    held_out: int = 10  # images per class kept out, for the top-1 the .json reports
    image_size: int = 40  # the demo spec's
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3  # AdamW, linear warm-up over the first epoch's tenth, then cosine to 0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    threads: int = 1  # fixed: results depend on it; one thread is ~85% of two's speed and
    # does not collapse when the other core is busy (two threads then run ~4x slower)


RECIPE = Recipe()  # read at call time (tests shrink it)


def weights_path(root: str | Path, backbone: str = BACKBONE, seed: int = SEED) -> Path:
    """Where `ensure` keeps the weights of ``backbone`` for ``seed`` under the data root."""
    folder = f"pretrained-v{demo_source.VERSION}.{VERSION}-seed{seed}"
    return Path(root).expanduser() / FOLDER / folder / f"{backbone}.safetensors"


def ensure(root: str | Path, backbone: str = BACKBONE, seed: int = SEED, *,
           say: Callable[[str], None] | None = None, progress: bool = True) -> Path:
    """The weights file of ``backbone`` under ``root``, pretrained here on first use (a tqdm line on stderr).

    Concurrent callers each train into their own temp file and rename it into place
    (`fgmodel._io.write_atomic`); their bytes are the same, so whichever rename lands last
    changes nothing.
    """
    path = weights_path(root, backbone, seed)
    if path.is_file():
        return path
    say = say or log.info
    recipe = RECIPE
    say(f"pretraining {backbone} on the demo's generated source task, once ({recipe.epochs} epochs of "
        f"{recipe.per_class * len(demo_source.CLASSES):,} images; about 2 min on 2 cores) -> {path}")
    state, meta = pretrain(backbone, seed, recipe, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
    write_atomic(path, save(state, metadata={"generator": __name__, "seed": str(seed)}))
    say(f"pretrained {backbone}: {meta['held_out_top1']:.1%} top-1 on {meta['held_out_images']} held-out source "
        f"images ({len(demo_source.CLASSES)} classes), {meta['seconds']:.0f} s")
    return path


def pretrain(backbone: str, seed: int, recipe: Recipe, *,
             progress: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train ``backbone`` from scratch on the source task; return its state dict (head included) and a summary."""
    started = time.perf_counter()
    classes = len(demo_source.CLASSES)
    n_train, n_held = recipe.per_class * classes, recipe.held_out * classes
    bar = tqdm(total=n_train + n_held, desc="demo pretraining: drawing", unit="img", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    with bar, _deterministic(seed, recipe.threads):
        x, y = demo_source.images(seed, recipe.per_class, recipe.image_size, progress=bar.update)
        x_held, y_held = demo_source.images(seed, recipe.held_out, recipe.image_size, first=n_train,
                                            progress=bar.update)
        mean, std = (torch.tensor(s).view(1, 3, 1, 1) * 255 for s in norm_stats(backbone))
        model = timm.create_model(backbone, num_classes=classes).to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        steps_per_epoch = math.ceil(n_train / recipe.batch_size)
        total = recipe.epochs * steps_per_epoch
        warmup = max(steps_per_epoch // 10, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * s / total))))
        order = torch.Generator().manual_seed(seed)
        bar.unit = "step"
        bar.reset(total=total)
        bar.set_description(f"demo pretraining: {backbone}")
        model.train()
        for _ in range(recipe.epochs):
            perm = torch.randperm(n_train, generator=order)
            for i in range(steps_per_epoch):
                idx = perm[i * recipe.batch_size:(i + 1) * recipe.batch_size]
                images = _batch(x, idx, mean, std)
                flip = torch.rand(len(idx), generator=order) < 0.5
                images[flip] = images[flip].flip(-1)
                loss = F.cross_entropy(model(images), torch.from_numpy(y[idx.numpy()]),
                                       label_smoothing=recipe.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                bar.update()
        top1 = _top1(model, x_held, y_held, mean, std, recipe.batch_size)
        bar.set_postfix(loss=f"{loss.item():.3f}", held_out_top1=f"{top1:.1%}")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "generator": __name__, "version": VERSION, "source_version": demo_source.VERSION, "seed": seed,
        "backbone": backbone, "classes": classes, "recipe": dataclasses.asdict(recipe), "train_images": n_train,
        "held_out_images": n_held, "held_out_top1": top1, "seconds": round(time.perf_counter() - started, 1),
    }
    return state, meta


@contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded torch RNG and a fixed thread count inside; the caller's RNG state and threads after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(before)


def _batch(x: np.ndarray, idx: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images -> normalised float NCHW in channels_last (the layout the model runs fastest in)."""
    images = torch.from_numpy(x[idx.numpy()]).permute(0, 3, 1, 2).float()
    return ((images - mean) / std).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def _top1(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, mean: torch.Tensor, std: torch.Tensor,
          batch_size: int) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(y), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(y)))
        correct += int((model(_batch(x, idx, mean, std)).argmax(1).numpy() == y[idx.numpy()]).sum())
    model.train()
    return correct / len(y)


def main(argv: list[str] | None = None) -> int:
    """``python -m fgmodel.pretrain_demo``: make the weights now, as a demo search's pre-flight would; describe them."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m fgmodel.pretrain_demo", description=main.__doc__)
    p.add_argument("--data-root", default="data", help="the demo's data root (default: data)")
    p.add_argument("--backbone", default=BACKBONE)
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    return run_main(lambda: _describe(ensure(args.data_root, args.backbone, args.seed, say=print)))


def _describe(path: Path) -> None:
    meta = json.loads(path.with_suffix(".json").read_text())
    recipe = meta["recipe"]
    print(f"{path}: {meta['backbone']} trained on {meta['train_images']:,} source images ({meta['classes']} classes, "
          f"{recipe['epochs']} epochs, torch threads: {recipe['threads']}) in {meta['seconds']:.0f} s; "
          f"{meta['held_out_top1']:.1%} top-1 on {meta['held_out_images']} held-out source images")


if __name__ == "__main__":
    sys.exit(main())
