"""FoodX-251 (iFood 2019): `class_list.txt`, header-less `train_info.csv` / `val_info.csv`.

The test labels were never published, so the official val set is the test set (as in the
paper); the search carves its validation split out of train. `root` is the folder holding
the extracted archives, or its parent when they sit in `foodx/` (what `download` makes).
"""

from __future__ import annotations

import csv
from pathlib import Path

from fgmodel.data.registry import Sample, TaskData, check_counts, find_root, require

TOP = "foodx"
FILES = ("class_list.txt", "train_info.csv", "val_info.csv", "train_set", "val_set")
OFFICIAL = {"train": 118475, "test": 11994}
OFFICIAL_CLASSES = 251


def _read(csv_path: Path, image_dir: Path) -> list[Sample]:
    with open(csv_path, newline="", encoding="utf-8") as f:
        return [Sample(str(image_dir / row[0].strip()), int(row[1])) for row in csv.reader(f) if row]


def load(root: str | Path, task: str = "foodx") -> TaskData:
    base = find_root(root, TOP, "class_list.txt", task)
    require(base, FILES, task, root)
    rows = {}
    with open(base / "class_list.txt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                key, name = line.strip().split(" ", 1)
                rows[int(key)] = name.strip()
    first = min(rows)  # 0 in the official file
    classes = [rows[i] for i in sorted(rows)]
    train = [s._replace(label=s.label - first) for s in _read(base / "train_info.csv", base / "train_set")]
    test = [s._replace(label=s.label - first) for s in _read(base / "val_info.csv", base / "val_set")]
    if len(classes) == OFFICIAL_CLASSES:
        check_counts("FoodX-251", {"train": len(train), "test": len(test)}, OFFICIAL)
    return TaskData(train, test, classes)
