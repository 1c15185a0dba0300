"""Images per second per worker of the train pipeline: uint8 hand-off against the float path, and ImageFolder + PIL.

Generates 200 photo-like 500x375 JPEGs (CUB's typical size) in a temp dir and runs, in
one process with one thread (what a DataLoader worker is), the paper's train augmentation
(`fgmodel.augment.train_transform` with the paper_augment preset) behind:
  baseline  torchvision ImageFolder (PIL open + convert, full-size decode), float path;
  draft     fgmodel.data ImageDataset (JPEG draft mode to >= the target size);
  cached    fgmodel.data CachedDataset (one-off resized raw-pixel cache; build time shown).
Each fgmodel source runs two ways, measured in the same run:
  uint8     what the loader does: the transform stops at a uint8 tensor, `collate` stacks the
            batch channels_last, and the device converts and normalises it;
  float     the pipeline before: ``ToDtype(float32) + Normalize`` per image in the worker and
            ``torch.stack``; kept here only, for this comparison.
Draft mode only pays where half scale still covers the target: at 224 px a 375-row image
cannot be halved, so the 112 px rows show what it does when it can. The uint8 batch is also
a quarter of the float one's bytes through shared memory, pinning and the copy to the GPU,
which this single-process measurement leaves out.

    python bench/loader.py [--images 200] [--passes 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fgmodel.augment import norm_stats, train_transform  # noqa: E402
from fgmodel.config import PRESETS_DIR, load_yaml  # noqa: E402
from fgmodel.data import ImageDataset, Sample, collate  # noqa: E402
from fgmodel.data.cache import CachedDataset  # noqa: E402


def make_jpegs(root: Path, n: int, seed: int = 0) -> list[Sample]:
    """Smooth colour fields plus texture: JPEG sizes (~60-90 KB) like real photos."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.Resampling.BICUBIC), dtype=np.int16)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = root / f"c{i % 4}" / f"{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)
        samples.append(Sample(str(path), i % 4))
    return samples


def float_transform(uint8_tf: v2.Compose, mean, std) -> v2.Compose:
    """The float path: the production transform, then float conversion and normalisation in the worker."""
    return v2.Compose([*uint8_tf.transforms, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(mean=list(mean), std=list(std))])


def float_collate(batch):
    """The float path's collate: a plain ``torch.stack`` of (C, H, W) float images."""
    images, labels, bad = zip(*batch)
    return torch.stack(images), torch.tensor(labels), torch.tensor(sum(bad))


def epoch_rate(dataset, collate_fn) -> float:
    """Images per CPU-second of one epoch through an in-process DataLoader (one worker's work).

    CPU time of this single-threaded process, not wall time: on a shared machine the
    wall clock also counts other processes' turns.
    """
    loader = DataLoader(dataset, batch_size=32, num_workers=0, collate_fn=collate_fn)
    start = time.process_time()
    n = sum(len(batch[1]) for batch in loader)
    return n / (time.process_time() - start)


def rates(pipelines: dict[str, tuple[object, object]], passes: int) -> dict[str, float]:
    """Best of `passes` interleaved epochs per pipeline, so drifts in load hit all alike."""
    best = dict.fromkeys(pipelines, 0.0)
    for _ in range(passes):
        for name, (dataset, collate_fn) in pipelines.items():
            best[name] = max(best[name], epoch_rate(dataset, collate_fn))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_yaml(PRESETS_DIR / "paper_augment.yaml")
    mean, std = norm_stats(cfg.model.backbone)
    with tempfile.TemporaryDirectory() as tmp:
        samples = make_jpegs(Path(tmp) / "jpegs", args.images)
        print(f"{args.images} JPEGs 500x375, paper augmentation, 1 thread, best of {args.passes} interleaved passes")
        print(f"{'size':>5} {'source':<9} {'output':<6} {'img/s':>7} {'vs baseline':>11} {'uint8/float':>11}")
        for size in (224, 112):
            tf = train_transform(cfg.augment, size)
            ftf = float_transform(tf, mean, std)
            start = time.process_time()
            cached = CachedDataset(samples, tf, size, Path(tmp) / f"cache{size}", workers=1, progress=False)
            build = args.images / (time.process_time() - start)
            cached_float = CachedDataset(samples, ftf, size, Path(tmp) / f"cache{size}", workers=1, progress=False)
            pipelines = {
                "baseline float": (ImageFolder(str(Path(tmp) / "jpegs"), transform=ftf), None),
                "draft float": (ImageDataset(samples, ftf, size), float_collate),
                "draft uint8": (ImageDataset(samples, tf, size), collate),
                "cached float": (cached_float, float_collate),
                "cached uint8": (cached, collate),
            }
            got = rates(pipelines, args.passes)
            for name, value in got.items():
                source, output = name.split()
                vs_float = f"{value / got[f'{source} float']:11.2f}" if output == "uint8" else " " * 11
                note = f"   (one-off cache build {build:.0f} img/s)" if name == "cached uint8" else ""
                print(f"{size:>5} {source:<9} {output:<6} {value:7.0f} {value / got['baseline float']:11.2f} "
                      f"{vs_float}{note}")
            print(f"{'':>5} batch of 32: {32 * 3 * size * size / 2**20:.1f} MiB uint8, "
                  f"{32 * 3 * size * size * 4 / 2**20:.1f} MiB float32")


if __name__ == "__main__":
    main()
