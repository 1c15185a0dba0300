"""`check`: the layout, the counts per split, and every image decoded (in parallel)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm
from tqdm.contrib.concurrent import process_map

from fgmodel.data._registry import load_task
from fgmodel.data.images import DECODE_ERRORS, load_image

CHECK_SIZE = 32  # decode through draft mode: every byte is still read, far fewer pixels made
CHUNK = 32  # images per task sent to a decoding process


class CheckResult(NamedTuple):
    counts: dict[str, int]  # train, test, classes
    bad: list[tuple[str, str]]  # (path, reason)


def decode_error(item: tuple[str, int]) -> str | None:
    """None when the image decodes fully, else the reason it does not."""
    path, crop = item
    try:
        load_image(path, crop, CHECK_SIZE)
    except DECODE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check(task: str, root: str | Path, workers: int | None = None, progress: bool = True) -> CheckResult:
    """Load `task` and decode every image (`workers` processes; 1 decodes in this process).

    Raises `DatasetNotFound` for a missing file and `DatasetError` for a malformed one.
    """
    data = load_task(task, root)
    items = sorted({(s.path, s.crop_bottom) for s in data.train + data.test})
    workers = workers or os.cpu_count() or 1
    bar = {"desc": f"decoding {task}", "unit": "img", "disable": not progress}
    if workers == 1:
        reasons = [decode_error(item) for item in tqdm(items, **bar)]
    else:
        reasons = process_map(decode_error, items, max_workers=workers, chunksize=CHUNK, tqdm_class=tqdm, **bar)
    bad = [(path, reason) for (path, _), reason in zip(items, reasons) if reason is not None]
    counts = {"train": len(data.train), "test": len(data.test), "classes": len(data.classes)}
    return CheckResult(counts, bad)
