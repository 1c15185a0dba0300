"""CUB-200-2011 in its official layout (`CUB_200_2011/`, 1-based ids in every list file).

The class count comes from `classes.txt`, so the generated demo set (same layout, fewer
classes) is read by this same code; the official split sizes are checked only when all
200 classes are present.
"""

from __future__ import annotations

from pathlib import Path

from fgmodel.data.registry import Sample, TaskData, check_counts, find_root, require

TOP = "CUB_200_2011"
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
OFFICIAL = {"train": 5994, "test": 5794}
OFFICIAL_CLASSES = 200


def _table(path: Path) -> dict[int, str]:
    """`<id> <rest of line>` -> {id: rest}; the rest may itself hold spaces."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                key, value = line.strip().split(" ", 1)
                rows[int(key)] = value.strip()
    return rows


def load(root: str | Path, task: str = "cub") -> TaskData:
    base = find_root(root, TOP, "images.txt", task)
    require(base, FILES + ("images",), task, root)
    images = _table(base / "images.txt")
    labels = _table(base / "image_class_labels.txt")
    is_train = _table(base / "train_test_split.txt")
    class_rows = _table(base / "classes.txt")
    classes = [class_rows[i] for i in sorted(class_rows)]
    first = min(class_rows)  # 1 in the official files
    train, test = [], []
    for image_id in sorted(images):
        sample = Sample(str(base / "images" / images[image_id]), int(labels[image_id]) - first)
        (train if is_train[image_id].strip() == "1" else test).append(sample)
    if len(classes) == OFFICIAL_CLASSES and task == "cub":
        check_counts("CUB-200-2011", {"train": len(train), "test": len(test)}, OFFICIAL)
    return TaskData(train, test, classes)
