"""``python -m fgmodel.data download|check TASK --root DIR``."""

from __future__ import annotations

import argparse
import sys
import urllib.error

from fgmodel.cli import one_line, run_main
from fgmodel.data._registry import get_task, load_task, task_names
from fgmodel.data.check import CheckResult, check
from fgmodel.data.download import ChecksumError, UnsafeArchive, download

FETCH_ERRORS = (ChecksumError, UnsafeArchive, urllib.error.URLError, ConnectionError, TimeoutError)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgmodel.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_down = sub.add_parser("download", help="fetch, verify and extract the official archives")
    p_check = sub.add_parser(
        "check",
        help="verify layout and counts, decode every image",
        description="Exit status: 0 all good, 1 some images are bad (listed), 2 the layout is broken.",
    )
    for p in (p_down, p_check):
        p.add_argument("task", choices=task_names())
        p.add_argument("--root", default="data", help="the archive's top folder or its parent (default: data)")
        p.add_argument("--no-progress", action="store_true")
    p_check.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    args = parser.parse_args(argv)
    return run_main(lambda: _run(args))  # a bad layout or list file: one line, exit 2


def _run(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    if args.command == "check":
        return _report(args, check(args.task, args.root, workers=args.workers, progress=progress))
    if not get_task(args.task).archives:
        print(f"{args.task} is generated locally, nothing to download")
    else:
        try:
            download(args.task, args.root, progress=progress)
        except FETCH_ERRORS as exc:  # worth a retry, unlike a bad layout: exit 1
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return 1
    data = load_task(args.task, args.root)
    counts = f"{len(data.train)} train, {len(data.test)} test, {len(data.classes)} classes"
    print(f"{args.task}: {counts} under {args.root}")
    return 0


def _report(args: argparse.Namespace, result: CheckResult) -> int:
    c = result.counts
    print(f"{args.task}: layout ok under {args.root}: {c['train']} train, {c['test']} test, {c['classes']} classes")
    for path, reason in result.bad:
        print(f"bad: {path} ({reason})")
    print(f"{len(result.bad)} bad image(s)" if result.bad else "all images decode")
    return 1 if result.bad else 0

if __name__ == "__main__":
    sys.exit(main())
