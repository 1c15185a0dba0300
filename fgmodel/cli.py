"""How every command-line entry point reports failure: one line on stderr, a fixed exit code.

    def main(argv=None) -> int:
        args = parser.parse_args(argv)
        return run_main(lambda: _run(args))

Known errors (bad input: a config, a path, a dataset, a checkpoint, a storage) print
``error: <first line>`` and exit 2, never a traceback; Ctrl-C prints ``interrupted`` and
exits 130. Anything else is a bug and keeps its traceback. No torch here: light CLIs use it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["DEFAULT_ERRORS", "EXIT_ERROR", "EXIT_INTERRUPTED", "one_line", "run_main"]

EXIT_ERROR = 2  # bad input, as argparse exits for a bad flag
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention

# ConfigError, CheckpointError, DatasetError are ValueErrors; DatasetNotFound and
# PretrainedUnavailable are FileNotFoundErrors; OSError also covers an unwritable output folder.
DEFAULT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def one_line(exc: BaseException) -> str:
    """The first non-empty line of the message, or the type's name when there is none.

    A wrapper that keeps the real error in ``orig`` (SQLAlchemy's DBAPIError) is read
    through to it: its own message repeats the SQL and a help link.
    """
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def run_main(fn: Callable[[], int | None], errors: tuple[type[BaseException], ...] = DEFAULT_ERRORS) -> int:
    """Call `fn`; return its exit code (None -> 0), 2 after a known error, 130 after Ctrl-C.

    A KeyboardInterrupt raised with a message (``raise KeyboardInterrupt("continue with
    --resume")``) adds it to the ``interrupted`` line.
    """
    try:
        code = fn()
    except KeyboardInterrupt as exc:
        hint = one_line(exc) if str(exc).strip() else ""
        print(f"interrupted; {hint}" if hint else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    return 0 if code is None else int(code)
