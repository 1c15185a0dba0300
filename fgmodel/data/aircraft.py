"""FGVC-Aircraft 2013b at variant level: trainval to train, test to test.

Read straight from the official list files: `variants.txt` (one variant a line, in class
order) and `images_variant_<split>.txt` (`<image id> <variant>`, split once: variant
names hold spaces, e.g. "Cessna 172"). Every sample carries `crop_bottom=20`: the
official images end in a 20-pixel copyright banner that would otherwise be a
class-independent feature to learn.
"""

from __future__ import annotations

from pathlib import Path

from fgmodel.data._registry import (
    Archive,
    DatasetError,
    Sample,
    TaskData,
    check_counts,
    find_root,
    read_rows,
    register_task,
    require,
)

TOP = "fgvc-aircraft-2013b"
ARCHIVES = (Archive("https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz", None),)
BANNER_ROWS = 20
FILES = ("data/variants.txt", "data/images_variant_trainval.txt", "data/images_variant_test.txt", "data/images")
OFFICIAL = {"train": 6667, "test": 3333}
OFFICIAL_CLASSES = 100


def _variants(path: Path) -> dict[str, int]:
    """Variant name -> class index, in the file's order."""
    index: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            name = line.strip()
            if not name:
                continue
            if name in index:
                raise DatasetError(path, lineno, f"variant {name!r} listed twice")
            index[name] = len(index)
    if not index:
        raise DatasetError(path, None, "no variants listed")
    return index


def _split(data: Path, split: str, variants: dict[str, int]) -> list[Sample]:
    path = data / f"images_variant_{split}.txt"
    samples = []
    for lineno, image_id, variant in read_rows(path, "<image id> <variant>"):
        if variant not in variants:
            raise DatasetError(path, lineno, f"variant {variant!r} is not in variants.txt")
        samples.append(Sample(str(data / "images" / f"{image_id}.jpg"), variants[variant], BANNER_ROWS))
    return samples


# Not one of the paper's tasks (only part of cub_aircraft): download, load and check it alone.
@register_task("aircraft", num_classes=OFFICIAL_CLASSES, description="FGVC-Aircraft 2013b variants",
               archives=ARCHIVES, trainable=False)
def load(root: str | Path, task: str = "aircraft") -> TaskData:
    """Raises `DatasetNotFound` for a missing file, `DatasetError` for a malformed one."""
    base = find_root(root, TOP, "data/variants.txt", task)
    require(base, FILES, task, root)
    data = base / "data"
    variants = _variants(data / "variants.txt")
    train = _split(data, "trainval", variants)
    test = _split(data, "test", variants)
    if len(variants) == OFFICIAL_CLASSES:
        check_counts("FGVC-Aircraft 2013b", {"train": len(train), "test": len(test)}, OFFICIAL)
    return TaskData(train, test, list(variants))
