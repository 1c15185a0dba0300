"""FoodX-251 (iFood 2019): `class_list.txt`, header-less `train_info.csv` / `val_info.csv`.

The test labels were never published, so the official val set is the test set (as in the
paper); the search carves its validation split out of train. `root` is the folder holding
the extracted archives, or its parent when they sit in `foodx/` (what `download` makes).
"""

from __future__ import annotations

import csv
from pathlib import Path

from fgmodel.data._registry import (
    Archive,
    DatasetError,
    Sample,
    TaskData,
    check_counts,
    find_root,
    int_id,
    read_rows,
    register_task,
    require,
)

TOP = "foodx"
ARCHIVES = (  # extracted into root/foodx, a parent form `find_root` accepts
    Archive("https://food-x.s3.amazonaws.com/annot.tar", "0c632c543ceed0e70f0eb2db58eda3ab", TOP),
    Archive("https://food-x.s3.amazonaws.com/train.tar", "8e56440e365ee852dcb0953a9307e27f", TOP),
    Archive("https://food-x.s3.amazonaws.com/val.tar", "fa9a4c1eb929835a0fe68734f4868d3b", TOP),
)
FILES = ("class_list.txt", "train_info.csv", "val_info.csv", "train_set", "val_set")
OFFICIAL = {"train": 118475, "test": 11994}
OFFICIAL_CLASSES = 251


def _read(csv_path: Path, image_dir: Path, class_ids: set[int], first: int) -> list[Sample]:
    samples = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2 or not row[0].strip():
                raise DatasetError(csv_path, lineno, f"expected '<image>,<class id>', got {','.join(row)!r}")
            label = int_id(csv_path, lineno, row[1].strip(), "class id")
            if label not in class_ids:
                raise DatasetError(csv_path, lineno, f"class id {label} is not in class_list.txt")
            samples.append(Sample(str(image_dir / row[0].strip()), label - first))
    return samples


@register_task(
    "foodx", num_classes=OFFICIAL_CLASSES, description="FoodX-251 (iFood 2019), val as test", archives=ARCHIVES
)
def load(root: str | Path, task: str = "foodx") -> TaskData:
    """Raises `DatasetNotFound` for a missing file, `DatasetError` for a malformed one."""
    base = find_root(root, TOP, "class_list.txt", task)
    require(base, FILES, task, root)
    path = base / "class_list.txt"
    rows: dict[int, str] = {}
    for lineno, key, name in read_rows(path):
        class_id = int_id(path, lineno, key, "class id")
        if class_id in rows:
            raise DatasetError(path, lineno, f"class id {class_id} listed twice")
        rows[class_id] = name
    if not rows:
        raise DatasetError(path, None, "no classes listed")
    first = min(rows)  # 0 in the official file
    classes = [rows[i] for i in sorted(rows)]
    train = _read(base / "train_info.csv", base / "train_set", set(rows), first)
    test = _read(base / "val_info.csv", base / "val_set", set(rows), first)
    if len(classes) == OFFICIAL_CLASSES:
        check_counts("FoodX-251", {"train": len(train), "test": len(test)}, OFFICIAL)
    return TaskData(train, test, classes)
