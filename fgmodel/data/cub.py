"""CUB-200-2011 in its official layout (`CUB_200_2011/`, 1-based ids in every list file).

The class count comes from `classes.txt`, so the generated demo set (same layout, fewer
classes) is read by this same code; the official split sizes are checked only when all
200 classes are present.
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
    int_id,
    read_rows,
    register_task,
    require,
)

TOP = "CUB_200_2011"
ARCHIVES = (
    Archive("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz", "97eceeb196236b17998738112f37df78"),
)
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
OFFICIAL = {"train": 5994, "test": 5794}
OFFICIAL_CLASSES = 200


def _table(path: Path) -> dict[int, tuple[int, str]]:
    """`<id> <rest of line>` -> {id: (line number, rest)}; the rest may itself hold spaces."""
    rows: dict[int, tuple[int, str]] = {}
    for lineno, key, value in read_rows(path):
        image_id = int_id(path, lineno, key)
        if image_id in rows:
            raise DatasetError(path, lineno, f"id {image_id} already given on line {rows[image_id][0]}")
        rows[image_id] = (lineno, value)
    return rows


@register_task("cub", num_classes=OFFICIAL_CLASSES, description="CUB-200-2011", archives=ARCHIVES)
def load(root: str | Path, task: str = "cub") -> TaskData:
    """Raises `DatasetNotFound` for a missing file, `DatasetError` for a malformed one."""
    base = find_root(root, TOP, "images.txt", task)
    require(base, FILES + ("images",), task, root)
    images = _table(base / "images.txt")
    labels = _table(base / "image_class_labels.txt")
    is_train = _table(base / "train_test_split.txt")
    class_rows = _table(base / "classes.txt")
    if not class_rows:
        raise DatasetError(base / "classes.txt", None, "no classes listed")
    classes = [class_rows[i][1] for i in sorted(class_rows)]
    first = min(class_rows)  # 1 in the official files
    train, test = [], []
    for image_id in sorted(images):
        lineno, rel = images[image_id]
        for table, name in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
            if image_id not in table:
                raise DatasetError(base / name, None, f"no row for image id {image_id} (images.txt line {lineno})")
        label_line, label_text = labels[image_id]
        label = int_id(base / "image_class_labels.txt", label_line, label_text, "class id")
        if label not in class_rows:
            raise DatasetError(base / "image_class_labels.txt", label_line, f"class id {label} is not in classes.txt")
        split_line, flag = is_train[image_id]
        if flag not in ("0", "1"):
            raise DatasetError(base / "train_test_split.txt", split_line, f"expected 0 or 1, got {flag!r}")
        (train if flag == "1" else test).append(Sample(str(base / "images" / rel), label - first))
    if len(classes) == OFFICIAL_CLASSES:  # the real CUB, whichever task reads it
        check_counts("CUB-200-2011", {"train": len(train), "test": len(test)}, OFFICIAL)
    return TaskData(train, test, classes)
