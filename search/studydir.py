"""A study directory (``studies/<task>/``) and the Optuna study it points to.

The directory holds ``study.json`` with the storage URL and study name, so the commands
that read a study (report, export, confirm) find one kept in SQLite beside it or in a
PostgreSQL / MySQL server alike. The URL is written with its password masked (``***``);
for such a study, pass the full URL with ``--storage URL``. A search's confirmation runs
live in a second study of the same storage, ``<name>:confirm`` (`open_confirm_study`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
import sqlalchemy

from fgmodel._io import write_atomic
from fgmodel.cli import DEFAULT_ERRORS, one_line
from search import attrs
from search.dashboard import name_objectives

POINTER_FILE = "study.json"
SQLITE_PREFIX = "sqlite:///"
SQLITE_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StudyPointer:
    storage: str
    study_name: str


def default_storage(study_dir: str | Path) -> str:
    """SQLite beside the outputs; absolute so Ray workers in other cwds find it."""
    return f"{SQLITE_PREFIX}{Path(study_dir).resolve() / 'optuna.db'}"


def write_pointer(study_dir: str | Path, pointer: StudyPointer) -> None:
    """Write ``study.json``; a password in the URL is masked, never stored in clear."""
    pointer = StudyPointer(storage=display_url(pointer.storage), study_name=pointer.study_name)
    path = Path(study_dir) / POINTER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(pointer), indent=2) + "\n")


def read_pointer(study_dir: str | Path) -> StudyPointer:
    path = Path(study_dir) / POINTER_FILE
    try:
        return StudyPointer(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {study_dir} a study directory written by search.run?") from None


class StorageError(ValueError):
    """The storage URL cannot be opened; the message is one line saying what to do."""


# What reading a study can raise that is the user's to fix: the CLIs print it in one line.
STUDY_ERRORS: tuple[type[BaseException], ...] = (*DEFAULT_ERRORS, sqlalchemy.exc.SQLAlchemyError)


# Which package provides a missing database driver module, for the one-line error.
DRIVER_PACKAGES = {
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
}


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; None for any other storage."""
    return Path(url[len(SQLITE_PREFIX):]) if url.startswith(SQLITE_PREFIX) else None


def display_url(url: str) -> str:
    """The URL with its password masked, for logs and study.json."""
    try:
        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def storage_for(url: str, heartbeat: int | None = None, grace: int | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage; SQLite gets WAL and a busy timeout so the dashboard can read while the driver writes.

    WAL lets readers (optuna-dashboard, ``optuna.load_study``) and the one writer (the
    search driver) work at once; the 30 s busy timeout absorbs the short exclusive
    moments (checkpoints, schema creation) instead of raising "database is locked".
    Every connection of the pool is made by `_sqlite_connect`, so each one, the first
    included (Optuna creates the schema with it), has the busy timeout and
    ``synchronous=NORMAL``. ``heartbeat`` (seconds) and ``grace`` turn on Optuna's trial
    heartbeat (the search driver's storage, see `search.study.DriverStudy`). Raises
    `StorageError` (one line) when the URL is malformed, its database driver is not
    installed or the database cannot be reached.
    """
    beats: dict = {"heartbeat_interval": heartbeat, "grace_period": grace} if heartbeat else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
            path = sqlite_path(url)
            if path is None or str(path) == ":memory:":
                return optuna.storages.RDBStorage(url, **beats)
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(_sqlite_connect(path)) as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection uses it
            return optuna.storages.RDBStorage(url, engine_kwargs={"creator": lambda: _sqlite_connect(path)}, **beats)
    except ImportError as exc:
        raise StorageError(_missing_driver(url, exc)) from None
    except (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open the storage {display_url(url)}: {one_line(exc)}") from None


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    db.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, and a commit is no fsync
    return db


def _missing_driver(url: str, exc: ImportError) -> str:
    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
    module = getattr(cause, "name", None) or ""
    package = DRIVER_PACKAGES.get(module.split(".")[0])
    what = f"pip install {package}" if package else "install the SQLAlchemy driver its URL names"
    named = f" (no module {module!r})" if module else ""
    return f"the storage {display_url(url)} needs a database driver that is not installed{named}: {what}"


def load_study(study_dir: str | Path, storage: str | None = None) -> optuna.Study:
    """The study ``study.json`` names, in its storage or in ``storage`` (a URL) when given.

    Every failure is one line: no such directory, no study.json, a masked password, or a
    storage that holds no study of that name.
    """
    if not Path(study_dir).is_dir():
        raise FileNotFoundError(f"study directory {study_dir} does not exist")
    pointer = read_pointer(study_dir)
    url = storage or pointer.storage
    if storage is None and ":***@" in url:
        raise StorageError(f"{Path(study_dir) / POINTER_FILE} holds the storage URL with its password masked "
                           f"({url}): pass the full URL with --storage")
    try:
        return optuna.load_study(study_name=pointer.study_name, storage=storage_for(url))
    except KeyError:
        raise FileNotFoundError(f"the storage named in {study_dir} holds no such study (see its study.json)") from None


CONFIRM_SUFFIX = ":confirm"


def confirm_study_name(study_name: str) -> str:
    """The name of the study that holds a search study's confirmation runs (`search.confirm`)."""
    return study_name + CONFIRM_SUFFIX


def open_confirm_study(study: optuna.Study, storage: str | optuna.storages.BaseStorage,
                       create: bool = True) -> optuna.Study | None:
    """``<study>:confirm`` in ``storage``, the study's; created with the same objectives when missing and ``create``."""
    name = confirm_study_name(study.study_name)
    if name not in optuna.get_all_study_names(storage):
        if not create:
            return None
        confirm = optuna.create_study(study_name=name, storage=storage, directions=study.directions)
        name_objectives(confirm)
        confirm.set_user_attr(attrs.CONFIRMS_STUDY, study.study_name)
        return confirm
    return optuna.load_study(study_name=name, storage=storage)


def load_confirm_study(study: optuna.Study, study_dir: str | Path, storage: str | None = None) -> optuna.Study | None:
    """The confirm study of ``study`` (loaded by `load_study` from the same arguments), or None."""
    return open_confirm_study(study, storage_for(storage or read_pointer(study_dir).storage), create=False)


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """``--study DIR`` and ``--storage URL``, as the report and export CLIs take them."""
    parser.add_argument("--study", required=True, help="study directory written by search.run")
    parser.add_argument("--storage", help="the study's storage URL, overriding study.json (needed when it holds a "
                                          "password, which study.json stores masked)")
