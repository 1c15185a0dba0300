"""FGVC-Aircraft 2013b at variant level: trainval to train, test to test.

Parsing is torchvision's `FGVCAircraft` (variant names hold spaces, e.g. "Cessna 172";
it splits each line once), constructed with `download=False` so it never touches the
network. Every sample carries `crop_bottom=20`: the official images end in a 20-pixel
copyright banner that would otherwise be a class-independent feature to learn.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import FGVCAircraft

from fgmodel.data.registry import DatasetError, Sample, TaskData, check_counts, find_root, require

TOP = "fgvc-aircraft-2013b"
BANNER_ROWS = 20
FILES = ("data/variants.txt", "data/images_variant_trainval.txt", "data/images_variant_test.txt", "data/images")
OFFICIAL = {"train": 6667, "test": 3333}
OFFICIAL_CLASSES = 100


def _malformed(data: Path, split: str, exc: Exception) -> DatasetError:
    """The line of `images_variant_<split>.txt` that torchvision's parser tripped on."""
    path = data / f"images_variant_{split}.txt"
    variants = {line.strip() for line in (data / "variants.txt").read_text(encoding="utf-8").splitlines()}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split(" ", 1)
            if len(parts) != 2:
                return DatasetError(path, lineno, f"expected '<image id> <variant>', got {line.strip()!r}")
            if parts[1] not in variants:
                return DatasetError(path, lineno, f"variant {parts[1]!r} is not in variants.txt")
    return DatasetError(path, None, f"unreadable ({type(exc).__name__}: {exc})")


def _split(parent: Path, split: str) -> tuple[list[Sample], list[str]]:
    try:
        ds = FGVCAircraft(str(parent), split=split, annotation_level="variant", download=False)
    except (KeyError, ValueError) as exc:
        raise _malformed(parent / TOP / "data", split, exc) from None
    samples = [Sample(str(p), int(y), BANNER_ROWS) for p, y in zip(ds._image_files, ds._labels)]
    return samples, list(ds.classes)


def load(root: str | Path, task: str = "aircraft", check: bool = True) -> TaskData:
    base = find_root(root, TOP, "data/variants.txt", task)
    require(base, FILES, task, root)
    # torchvision wants the parent of the archive's top folder, spelt exactly TOP.
    if base.name != TOP:
        raise FileNotFoundError(f"{task}: the FGVC-Aircraft folder must be named {TOP}, got {base}")
    train, classes = _split(base.parent, "trainval")
    test, _ = _split(base.parent, "test")
    if check and len(classes) == OFFICIAL_CLASSES:
        check_counts("FGVC-Aircraft 2013b", {"train": len(train), "test": len(test)}, OFFICIAL)
    return TaskData(train, test, classes)
