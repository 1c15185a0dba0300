"""A one-off resized cache: every image decoded and resized once, then read as raw pixels.

The transforms start with a resize to (S, S) (the paper's "224x224 resize"). For the
usual photo sizes (CUB's 500x375) draft mode cannot help at 224 (half scale would be 188
rows), so decode + resize stay most of a worker's time. The cache stores exactly what
that first step outputs, as uint8 (N, S, S, 3) in one file that every worker memory-maps
(shared page cache, no pickling); the transform's own resize then has nothing to do.
Same pixels as the uncached path (same draft, crop and PIL bilinear resize); bad images
are recorded at build time and replaced in the loader as usual.

One copy per search: the folder is made absolute (`build_caches` in `fgmodel.data.loader`
resolves it once, in the search's driver, so a Ray trial's working directory does not
matter) and a cache is built under an exclusive ``flock`` on a lock file beside it, into a
temporary folder whose files are renamed into place, the ``.json`` last: processes that
start together (concurrent trials, or a trial and the pre-flight) build it once, the others
wait on the lock and then read that one file, and a killed build leaves nothing that looks
finished.

Cost: S*S*3 bytes per image (147 KiB at 224: 1.8 GB for CUB, 19 GB for FoodX), built
once per (image list, size) in parallel, keyed by paths, sizes and mtimes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from fgmodel.data._registry import Sample
from fgmodel.data.images import DECODE_ERRORS, ImageDataset, load_image

VERSION = 1
CHUNK = 64


def cache_key(samples: Sequence[Sample], size: int) -> str:
    digest = hashlib.sha1(f"v{VERSION} {size}".encode())
    for s in samples:
        try:
            st = os.stat(s.path)
            stamp = f"{st.st_size} {st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"\n{s.path}\t{s.crop_bottom}\t{stamp}".encode())
    return digest.hexdigest()[:20]


def resolve_dir(cache_dir: str | Path) -> Path:
    """The cache folder as an absolute path (``~`` expanded, relative to this process's working directory)."""
    return Path(cache_dir).expanduser().resolve()


def cache_file(samples: Sequence[Sample], size: int, cache_dir: str | Path) -> Path:
    """Where the cache of (samples, size) lives under `cache_dir`; finished once its ``.json`` exists."""
    return resolve_dir(cache_dir) / f"{cache_key(samples, size)}-{size}px.u8"


def resized(path: str, crop_bottom: int, size: int) -> Image.Image:
    """What the uncached path feeds the transform's first step, after that step."""
    image = load_image(path, crop_bottom, size)
    return image if image.size == (size, size) else image.resize((size, size), Image.Resampling.BILINEAR)


def _fill(args: tuple[str, int, int, int, list[tuple[str, int]]]) -> list[int]:
    """Write images [start, start + len(items)) into the memmap; return the bad offsets."""
    file, n, size, start, items = args
    out = np.memmap(file, dtype=np.uint8, mode="r+", shape=(n, size, size, 3))
    bad = []
    for k, (path, crop) in enumerate(items):
        try:
            out[start + k] = np.asarray(resized(path, crop, size))
        except DECODE_ERRORS:
            bad.append(start + k)
    out.flush()
    return bad


def build_cache(samples: Sequence[Sample], size: int, cache_dir: str | Path, workers: int | None = None,
                progress: bool = True) -> Path:
    """The cache file for (samples, size) under `cache_dir`, built if absent, once across processes.

    A finished cache is returned without locking. Otherwise the lock file beside it is taken
    (blocking: another process may be building it) and, if it is still absent, it is built.
    """
    final = cache_file(samples, size, cache_dir)
    if _finished(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.with_suffix(".lock"), final, progress):
        if not _finished(final):
            _build(samples, size, final, workers or os.cpu_count() or 1, progress)
    return final


def _finished(final: Path) -> bool:
    return final.with_suffix(".json").exists() and final.exists()


@contextmanager
def _locked(lock: Path, final: Path, progress: bool) -> Iterator[None]:
    """Hold an exclusive flock on `lock` (released by the kernel if this process dies)."""
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                tqdm.write(f"waiting for another process to finish the pixel cache {final}", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(samples: Sequence[Sample], size: int, final: Path, workers: int, progress: bool) -> None:
    """Fill a temporary folder beside `final`, then rename its pixels and (last) its ``.json`` into place.

    Called with the lock held, so leftovers of this cache's earlier, killed builds are removed.
    The pool loop is hand-written, not tqdm's `process_map`: each task writes a chunk of
    `CHUNK` images into the memmap (one open and one flush per chunk, no pixels sent back),
    and the bar counts images, where `process_map` would tick once per task.
    """
    prefix = f".tmp-{final.stem}-"
    for stale in final.parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        pixels = str(tmp / final.name)
        n = len(samples)
        np.memmap(pixels, dtype=np.uint8, mode="w+", shape=(n, size, size, 3)).flush()
        items = [(s.path, s.crop_bottom) for s in samples]
        jobs = [(pixels, n, size, i, items[i : i + CHUNK]) for i in range(0, n, CHUNK)]
        bad: list[int] = []
        with (
            tqdm(total=n, desc=f"caching {n} images at {size}px", unit="img", disable=not progress) as bar,
            ProcessPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool,
        ):
            for job, found in zip(jobs, map(_fill, jobs) if pool is None else pool.map(_fill, jobs)):
                bad += found
                bar.update(len(job[4]))
        meta = tmp / final.with_suffix(".json").name
        meta.write_text(json.dumps({"n": n, "size": size, "bad": sorted(bad)}))
        os.replace(pixels, final)
        os.replace(meta, final.with_suffix(".json"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class CachedDataset(ImageDataset):
    """`ImageDataset` reading (S, S) pixels from a `build_cache` file instead of JPEGs."""

    def __init__(self, samples: Sequence[Sample], transform: Callable | None, size: int, cache_dir: str | Path,
                 workers: int | None = None, progress: bool = True):
        super().__init__(samples, transform, size)
        self.file = str(build_cache(samples, size, cache_dir, workers, progress))
        info = json.loads(Path(self.file).with_suffix(".json").read_text())
        self.size = size
        self._bad.update(info["bad"])
        self._pixels: np.memmap | None = None  # opened lazily: after the fork, in each worker

    def _load(self, index: int) -> Image.Image | None:
        if index in self._bad:
            return None
        if self._pixels is None:
            self._pixels = np.memmap(self.file, dtype=np.uint8, mode="r", shape=(len(self), self.size, self.size, 3))
        return Image.fromarray(np.asarray(self._pixels[index]))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pixels"] = None  # a memmap is re-opened, not pickled, in spawned workers
        return state
