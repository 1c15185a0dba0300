"""Fetch the official archives: resumable HTTP, md5 verification, extraction that stays in root.

The archives of each task are registered with it (`TaskSpec.archives`). A `.part` file
is resumed with an HTTP Range request (on a rerun, and up to `RETRIES` times within one
run when the connection drops). Only a file whose md5 matches is renamed
to its final name; a mismatch is moved aside as `.bad` with a one-line error. Archives
are checked member by member before anything is written: absolute paths, `..`, links
pointing out of the root and device files are refused, and tarfile's `data` filter is
used on top where the Python has it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from fgmodel.data._registry import Archive, get_task

CHUNK = 1 << 20
RETRIES = 3
TIMEOUT_S = 60


class ChecksumError(ValueError):
    pass


class UnsafeArchive(ValueError):
    pass


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fetch_once(url: str, part: Path, progress: bool) -> None:
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to fetch: the part is complete
            return
        raise
    with response:
        if start and response.status != 206:  # the server ignored the range: start over
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        done = start
        with open(part, "ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=part.name[: -len(".part")], disable=not progress
        ) as bar:
            while block := response.read(CHUNK):
                out.write(block)
                done += len(block)
                bar.update(len(block))
    if total is not None and done < total:
        raise ConnectionError(f"{url}: connection closed after {done} of {total} bytes")


def fetch(url: str, dest: Path, md5: str | None, progress: bool = True) -> Path:
    """Download `url` to `dest` (resuming `dest.part`) and verify its md5."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(RETRIES):
        try:
            _fetch_once(url, part, progress)
            break
        except (ConnectionError, TimeoutError, http.client.HTTPException, urllib.error.URLError) as exc:
            if isinstance(exc, urllib.error.HTTPError) or attempt == RETRIES - 1:
                raise
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            bad = dest.with_name(dest.name + ".bad")
            os.replace(part, bad)
            raise ChecksumError(f"{url}: md5 {got} != expected {md5}; the file was moved to {bad}")
    os.replace(part, dest)
    return dest


def _inside(root: Path, path: Path) -> bool:
    return os.path.commonpath([root, path]) == str(root)


def check_members(tar: tarfile.TarFile, dest: Path) -> None:
    """Raise `UnsafeArchive` naming the first member that would land outside `dest`."""
    root = dest.resolve()
    for m in tar.getmembers():
        name = m.name
        if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            raise UnsafeArchive(f"archive member {name!r} escapes the extraction root")
        target = Path(os.path.normpath(root / name))
        if not _inside(root, target):
            raise UnsafeArchive(f"archive member {name!r} escapes the extraction root")
        if m.issym() or m.islnk():
            base = target.parent if m.issym() else root
            link = Path(os.path.normpath(base / m.linkname))
            if os.path.isabs(m.linkname) or not _inside(root, link):
                raise UnsafeArchive(f"archive link {name!r} -> {m.linkname!r} points outside the extraction root")
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchive(f"archive member {name!r} is a device or fifo")


def safe_extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        check_members(tar, dest)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)


def download(task: str, root: str | Path, archives: list[Archive] | None = None, progress: bool = True) -> Path:
    """Fetch and extract `task`'s archives under `root`; archives are kept in `root/downloads`."""
    if archives is None:
        archives = list(get_task(task).archives)
    root = Path(root).expanduser()
    for item in archives:
        dest = root / item.subdir if item.subdir else root
        done = dest / f".{item.filename}.extracted"
        if done.exists():
            continue
        path = fetch(item.url, root / "downloads" / item.filename, item.md5, progress)
        if item.md5 is None:
            print(f"{item.filename}: no published md5, not verified")
        safe_extract(path, dest)
        done.touch()
    return root
