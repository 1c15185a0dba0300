"""fgmodel._io: an atomic write replaces the file whole, and a failed one leaves the old file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fgmodel._io import atomic_path, write_atomic


def test_write_atomic_writes_text_and_bytes_and_creates_the_folder(tmp_path: Path):
    target = tmp_path / "new" / "metrics.json"
    write_atomic(target, "{\"top1\": 0.5}\n")
    assert target.read_text() == "{\"top1\": 0.5}\n"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]  # no temporary file left


def test_the_temporary_path_is_a_hidden_sibling_replaced_on_success(tmp_path: Path):
    target = tmp_path / "best.pt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".best.pt.") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing visible before the block ends
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


class _Boom(Exception):
    pass


def test_an_error_inside_the_block_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path):
    target = tmp_path / "last.pt"
    target.write_text("old")
    with pytest.raises(_Boom), atomic_path(target) as tmp:
        tmp.write_text("half of the ne")
        raise _Boom
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:  # Ctrl-C mid-write too
        tmp.write_text("x")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_a_block_that_writes_nothing_fails_and_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "study.json"
    target.write_text("old")
    with pytest.raises(FileNotFoundError), atomic_path(target):
        pass
    assert target.read_text() == "old"


def test_written_files_get_the_usual_mode(tmp_path: Path):
    plain, atomic = tmp_path / "plain", tmp_path / "atomic"
    plain.write_text("x")
    write_atomic(atomic, "x")
    assert atomic.stat().st_mode == plain.stat().st_mode


@pytest.mark.slow
def test_io_and_cli_do_not_import_torch():
    code = "import sys, fgmodel._io, fgmodel.cli, fgmodel.budget; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
