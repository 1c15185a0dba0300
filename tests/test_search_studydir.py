"""The study directory: SQLite pragmas on every pooled connection, the masked pointer."""

from __future__ import annotations

import contextlib
import json

import optuna
import pytest

from search import studydir

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_pooled_sqlite_connection_has_wal_normal_and_busy_timeout(tmp_path):
    storage = studydir.storage_for(studydir.default_storage(tmp_path))
    optuna.create_study(storage=storage, study_name="s")  # schema made on the first connection
    conns = [storage.engine.raw_connection() for _ in range(3)]
    try:
        for conn in conns:
            cur = conn.cursor()
            assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert cur.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
            assert cur.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    finally:
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


def test_pointer_masks_the_password_and_storage_overrides(tmp_path):
    studydir.write_pointer(tmp_path, studydir.StudyPointer("postgresql://user:s3cret@db/fg", "foodx"))
    text = (tmp_path / "study.json").read_text()
    assert "s3cret" not in text and json.loads(text)["storage"] == "postgresql://user:***@db/fg"
    with pytest.raises(studydir.StorageError, match="--storage"):
        studydir.load_study(tmp_path)
    url = studydir.default_storage(tmp_path / "real")
    optuna.create_study(storage=studydir.storage_for(url), study_name="foodx")
    assert studydir.load_study(tmp_path, storage=url).study_name == "foodx"


def test_storage_errors_are_one_line():
    with pytest.raises(studydir.StorageError) as info:
        studydir.storage_for("postgresql+psycopg2://u:pw@localhost/db")
    assert "pip install psycopg2-binary" in str(info.value) and "pw@" not in str(info.value)
