"""A study directory (``studies/<task>/``) and the Optuna study it points to.

The directory holds ``study.json`` with the storage URL and study name, so `report` and
`export` find a study kept in SQLite beside it or in a PostgreSQL / MySQL server alike.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy

POINTER_FILE = "study.json"
SQLITE_BUSY_TIMEOUT_S = 30.0


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
    """An RDB storage; SQLite gets WAL and a busy timeout so the dashboard can read while the driver writes.

    WAL lets readers (optuna-dashboard, ``optuna.load_study``) and the one writer (the
    search driver) work at once; the 30 s busy timeout absorbs the short exclusive
    moments (checkpoints, schema creation) instead of raising "database is locked".
    """
    if not url.startswith("sqlite:///"):
        return optuna.storages.RDBStorage(url)
    path = Path(url[len("sqlite:///") :])
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection uses it
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}})
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
    return storage


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, and a commit is no fsync
    cursor.close()


def open_study(study_dir: str | Path) -> optuna.Study:
    pointer = read_pointer(study_dir)
    return optuna.load_study(study_name=pointer.study_name, storage=storage_for(pointer.storage))
