"""A study directory (``studies/<task>/``) and the Optuna study it points to.

The directory holds ``study.json`` with the storage URL and study name, so `report` and
`export` find a study kept in SQLite beside it or in a PostgreSQL / MySQL server alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna

POINTER_FILE = "study.json"


@dataclass(frozen=True)
class StudyPointer:
    storage: str
    study_name: str


def default_storage(study_dir: str | Path) -> str:
    """SQLite beside the outputs; absolute so Ray workers in other cwds find it."""
    return f"sqlite:///{Path(study_dir).resolve() / 'optuna.db'}"


def write_pointer(study_dir: str | Path, pointer: StudyPointer) -> None:
    path = Path(study_dir) / POINTER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(pointer), indent=2) + "\n")
    tmp.replace(path)


def read_pointer(study_dir: str | Path) -> StudyPointer:
    path = Path(study_dir) / POINTER_FILE
    try:
        return StudyPointer(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {study_dir} a study directory written by search.run?") from None


def storage_for(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage; SQLite gets WAL and a busy timeout so the dashboard can read while the driver writes."""
    if url.startswith("sqlite:///"):
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={"connect_args": {"timeout": 30}},
        )
    return optuna.storages.RDBStorage(url)


def open_study(study_dir: str | Path) -> optuna.Study:
    pointer = read_pointer(study_dir)
    return optuna.load_study(study_name=pointer.study_name, storage=storage_for(pointer.storage))
