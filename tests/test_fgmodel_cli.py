"""fgmodel.cli: one line per error, exit 2 for known errors, 130 for Ctrl-C, the rest untouched."""

from __future__ import annotations

import pytest

from fgmodel.cli import DEFAULT_ERRORS, one_line, run_main
from fgmodel.config import ConfigError


class _DBAPIError(Exception):
    """Shaped like SQLAlchemy's DBAPIError: the driver's error in `orig`, SQL and a link around it."""

    def __init__(self, orig: BaseException):
        super().__init__(f"(sqlite3.OperationalError) {orig}\n[SQL: SELECT 1]\n(Background: https://sqlalche.me/e/20)")
        self.orig = orig


def test_one_line_takes_the_first_non_empty_line():
    assert one_line(ValueError("\n  first line  \nsecond line\n")) == "first line"
    assert one_line(ConfigError("model.dropout", "must be in [0, 1), got 1.5")) == \
        "model.dropout: must be in [0, 1), got 1.5"
    assert one_line(FileNotFoundError(2, "No such file or directory", "x.yaml")) == \
        "[Errno 2] No such file or directory: 'x.yaml'"


def test_one_line_of_an_empty_message_is_the_type_name():
    assert one_line(RuntimeError()) == "RuntimeError"
    assert one_line(KeyError("")) == "''"  # KeyError prints its key's repr: not empty
    assert one_line(ValueError(" \n \n")) == "ValueError"


def test_one_line_reads_through_a_wrapped_orig():
    assert one_line(_DBAPIError(OSError("database is locked"))) == "database is locked"
    wrapper = _DBAPIError(OSError("x"))
    wrapper.orig = "not an exception"  # only an exception is read through
    assert one_line(wrapper) == "(sqlite3.OperationalError) x"


def _raise(exc: BaseException):
    def fn():
        raise exc

    return fn


@pytest.mark.parametrize("exc", [
    ConfigError("optim.lr", "must be > 0, got 0"),
    FileNotFoundError("dataset folder /d does not exist\nsecond line"),
    PermissionError(13, "Permission denied", "/out"),
])
def test_known_errors_print_one_line_and_exit_2(exc, capsys):
    assert run_main(_raise(exc)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"error: {one_line(exc)}\n"


def test_ctrl_c_exits_130_with_an_optional_hint(capsys):
    assert run_main(_raise(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert run_main(_raise(KeyboardInterrupt("continue with --resume --output runs/x"))) == 130
    assert capsys.readouterr().err == "interrupted; continue with --resume --output runs/x\n"


def test_return_codes_pass_through_and_other_errors_keep_their_traceback(capsys):
    assert run_main(lambda: None) == 0
    assert run_main(lambda: 1) == 1
    with pytest.raises(ZeroDivisionError):
        run_main(_raise(ZeroDivisionError("a bug")))
    with pytest.raises(ValueError):  # a caller's narrower tuple
        run_main(_raise(ValueError("x")), errors=(KeyError,))
    assert run_main(_raise(KeyError("k")), errors=(KeyError,)) == 2
    assert capsys.readouterr().err == "error: 'k'\n"
    assert ValueError in DEFAULT_ERRORS and OSError in DEFAULT_ERRORS
