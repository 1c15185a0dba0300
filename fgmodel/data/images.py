"""Image decoding and the Dataset that skips bad files.

Decoding asks libjpeg for a reduced image (PIL's draft mode: DCT scaling by 1/2, 1/4 or
1/8) whenever the result still has at least the target size, so no pixels are decoded only
to be thrown away by the resize. Bad files (missing, zero-byte, truncated, not an image)
are replaced by the next good sample and counted, instead of stopping an epoch or
silently training on half-decoded pictures (`ImageFile.LOAD_TRUNCATED_IMAGES` stays off).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from fgmodel.data._registry import Sample

log = logging.getLogger(__name__)

# What a broken file raises while PIL opens or decodes it (missing files are OSErrors).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
MAX_REPLACEMENTS = 64


def load_image(path: str, crop_bottom: int = 0, min_size: int | None = None) -> Image.Image:
    """Decode `path` to RGB, banner cropped, at least `min_size` pixels on each side kept.

    Raises one of `DECODE_ERRORS` for a file that cannot be fully decoded.
    """
    with Image.open(path) as img:
        full_w, full_h = img.size
        if min_size and img.format == "JPEG":
            # Draft keeps both sides >= the request; the height must still be >= min_size
            # once the (equally scaled) banner is gone.
            kept = max(full_h - crop_bottom, 1)
            img.draft("RGB", (min_size, -(-min_size * full_h // kept)))
        rgb = img.convert("RGB")  # decodes here: truncation raises inside this function
    if crop_bottom:
        rows = round(crop_bottom * rgb.height / full_h)
        if rows >= rgb.height:
            raise ValueError(f"{path}: image height {full_h} <= banner {crop_bottom}")
        rgb = rgb.crop((0, 0, rgb.width, rgb.height - rows))
    return rgb


class EpochSampler(torch.utils.data.Sampler):
    """Yields `(index, sample_seed)`: a seeded shuffle plus one augmentation seed per sample.

    `set_epoch(seed)` fixes both the order and every sample's seed for the next pass, in
    the main process; workers (persistent or not) only receive the pairs, so what an
    item looks like depends on (epoch seed, index) and on nothing a worker remembers.
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0):
        self.n, self.shuffle, self.seed = n, shuffle, seed

    def set_epoch(self, seed: int) -> None:
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else range(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=g).tolist()  # indexed by sample, not position
        return iter([(i, seeds[i]) for i in order])


class ImageDataset(torch.utils.data.Dataset):
    """(image, label, n_bad): a bad file is replaced by the next index that decodes.

    Replacement is deterministic (index + 1, + 2, ...), so a run is reproducible, and
    `n_bad` says how many files were skipped to produce this item. Paths are held in a
    numpy array, not a list of Python objects, so forked workers don't copy them on read.
    The index may be an `(index, seed)` pair (from `EpochSampler`): torch's RNG, which
    the torchvision transforms draw from, is then seeded with `seed` for this item (in
    the main process its previous state is restored afterwards, so dropout is unaffected).
    """

    def __init__(self, samples: Sequence[Sample], transform: Callable | None = None, min_size: int | None = None):
        if not samples:
            raise ValueError("no samples to load")
        self.paths = np.array([s.path for s in samples])
        self.labels = np.array([s.label for s in samples], dtype=np.int64)
        self.crops = np.array([s.crop_bottom for s in samples], dtype=np.int32)
        self.transform = transform
        self.min_size = min_size
        self._bad: set[int] = set()  # per process: known-bad files aren't decoded twice

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, index: int) -> Image.Image | None:
        if index in self._bad:
            return None
        path = str(self.paths[index])
        try:
            return load_image(path, int(self.crops[index]), self.min_size)
        except DECODE_ERRORS as exc:
            self._bad.add(index)
            log.warning("skipping bad image %s: %s", path, exc)
            return None

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[object, int, int]:
        if isinstance(index, tuple):
            index, seed = index
            if torch.utils.data.get_worker_info() is not None:  # a worker's RNG is its own
                torch.manual_seed(seed)
                return self._item(index)
            saved = torch.get_rng_state()
            torch.manual_seed(seed)
            try:
                return self._item(index)
            finally:
                torch.set_rng_state(saved)
        return self._item(index)

    def _item(self, index: int) -> tuple[object, int, int]:
        n = len(self)
        for n_bad in range(min(n, MAX_REPLACEMENTS)):
            j = (index + n_bad) % n
            image = self._load(j)
            if image is not None:
                if self.transform is not None:
                    image = self.transform(image)
                return image, int(self.labels[j]), n_bad
        raise RuntimeError(
            f"{min(n, MAX_REPLACEMENTS)} images in a row from {self.paths[index]} failed to decode; "
            "run `python -m fgmodel.data check` on this dataset"
        )


def collate(batch: list[tuple[torch.Tensor, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack images and labels; sum the items' replacements into one scalar `n_bad`.

    (C, H, W) images are stacked channels_last, the layout of the model's input: a PIL
    image's tensor is already a (C, H, W) view of (H, W, C) pixels, so each is copied as one
    block here and the batch goes to the device without a permutation on either side.
    """
    images, labels, bad = zip(*batch)
    first = images[0]
    if first.dim() == 3:
        stacked = torch.empty((len(images), *first.shape), dtype=first.dtype, memory_format=torch.channels_last)
        for i, image in enumerate(images):
            stacked[i] = image
    else:
        stacked = torch.stack(images)
    return stacked, torch.tensor(labels, dtype=torch.long), torch.tensor(sum(bad), dtype=torch.long)
