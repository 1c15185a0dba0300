"""Fetch the official archives: resumable HTTP, md5 verification, extraction that stays in root.

The archives of each task are registered with it (`TaskSpec.archives`). A `.part` file is
resumed with an HTTP Range request (on a rerun, and up to `RETRIES` times within one run
when the connection drops); torchvision's `download_url` neither resumes nor retries, so
the fetch is hand-written. Only a file whose md5 matches is renamed to its final name; a
mismatch is moved aside as `.bad` with a one-line error. Extraction runs tarfile's `data`
filter over every member before anything is written, so an archive with one member that
would land (or link) outside the root, or a device file, extracts nothing.
"""

from __future__ import annotations

import http.client
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

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
    from torchvision.datasets.utils import calculate_md5  # here: importing fgmodel.data loads no torch

    return calculate_md5(path, chunk_size=CHUNK)


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


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract `archive` into `dest` with tarfile's `data` filter, or raise `UnsafeArchive`.

    The filter refuses a member only as it comes to it, after the ones before it are written;
    running it over every member first keeps an unsafe archive from writing anything.
    Leading slashes are stripped (``/a/b`` lands in ``dest/a/b``), as tar itself does.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        try:
            for member in tar.getmembers():
                tarfile.data_filter(member, str(dest))
            tar.extractall(dest, filter="data")  # filters again, now against what is on disk
        except tarfile.FilterError as exc:
            raise UnsafeArchive(f"{archive.name}: {exc}") from None


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
