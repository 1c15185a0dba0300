"""`download` against a Range-capable HTTP server on 127.0.0.1 serving fixture archives."""

import dataclasses
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from data_fixtures import make_aircraft, make_cub, make_foodx

from fgmodel.data import _registry, get_task, load_task
from fgmodel.data import download as dl
from fgmodel.data.__main__ import main


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng := self.headers.get("Range"):
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in server.cut:  # drop the connection half-way, once
            server.cut.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.cut = {}, [], set()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _payload(n: int = 300_000) -> bytes:
    return bytes(range(256)) * (n // 256)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_fetch_resumes_after_a_cut(server, tmp_path: Path):
    data = _payload()
    server.files["/a.bin"] = data
    server.cut.add("/a.bin")
    out = dl.fetch(server.url + "/a.bin", tmp_path / "a.bin", _md5(data), progress=False)
    assert out.read_bytes() == data
    assert server.requests == [("/a.bin", None), ("/a.bin", f"bytes={len(data) // 2}-")]
    assert not (tmp_path / "a.bin.part").exists()


def test_fetch_resumes_a_partial_file_from_an_earlier_run(server, tmp_path: Path):
    data = _payload()
    server.files["/a.bin"] = data
    (tmp_path / "a.bin.part").write_bytes(data[:1000])
    dl.fetch(server.url + "/a.bin", tmp_path / "a.bin", _md5(data), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == data
    assert server.requests == [("/a.bin", "bytes=1000-")]


def test_fetch_rejects_wrong_md5(server, tmp_path: Path):
    server.files["/a.bin"] = _payload()
    with pytest.raises(dl.ChecksumError) as info:
        dl.fetch(server.url + "/a.bin", tmp_path / "a.bin", "0" * 32, progress=False)
    assert f"!= expected {'0' * 32}; the file was moved to {tmp_path / 'a.bin.bad'}" in str(info.value)
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()
    assert (tmp_path / "a.bin.bad").read_bytes() == _payload()


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"x"


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.mark.parametrize(
    "bad, message",
    [
        (_file("../evil.txt"), "'../evil.txt' would be extracted to .*outside the destination"),
        (_file("ok/../../evil.txt"), "'ok/../../evil.txt' would be extracted to .*outside the destination"),
        (_link("ok/link", "../../outside"), "'ok/link' would link to .*outside the destination"),
        (_link("ok/abs", "/etc/passwd"), "'ok/abs' is a link to an absolute path"),
        (_link("ok/hard", "../outside", tarfile.LNKTYPE), "'ok/hard' would link to .*outside the destination"),
        (_link("ok/tty", "", tarfile.CHRTYPE), "'ok/tty' is a special file"),
    ],
)
def test_extract_refuses_members_escaping_root(tmp_path: Path, bad, message):
    archive = tmp_path / "a.tgz"
    archive.write_bytes(_tar([_file("ok/fine.txt"), bad]))
    dest = tmp_path / "root" / "sub"
    with pytest.raises(dl.UnsafeArchive, match="^a.tgz: " + message):
        dl.safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # the good member before the bad one is not written either
    assert not (tmp_path / "root" / "evil.txt").exists()


def test_extract_keeps_absolute_names_inside_root(tmp_path: Path):
    absolute = str(tmp_path / "abs.txt")  # a name that would land right here if taken literally
    archive = tmp_path / "a.tgz"
    archive.write_bytes(_tar([_file(absolute)]))
    dl.safe_extract(archive, tmp_path / "out")
    assert not Path(absolute).exists()
    assert (tmp_path / "out" / absolute.lstrip("/")).read_bytes() == b"x"


def test_extract_allows_links_inside(tmp_path: Path):
    archive = tmp_path / "a.tgz"
    archive.write_bytes(_tar([_file("d/fine.txt"), _link("d/alias.txt", "fine.txt")]))
    dl.safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "alias.txt").read_bytes() == b"x"


def _tar_of(paths: dict[str, Path], mode: str) -> bytes:
    """A tar of `paths` (arcname -> file or folder on disk)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for arcname, path in paths.items():
            tar.add(path, arcname=arcname)
    return buf.getvalue()


def _official_archives(tmp_path: Path) -> dict[str, bytes]:
    """Tiny stand-ins for every official archive, by file name, laid out as the real ones are."""
    src = tmp_path / "src"
    make_cub(src, per_class=(2, 2))
    make_aircraft(src, trainval=1, test=1)
    food = make_foodx(src / "foodx", train=(2, 1), val=1)
    annot = {name: food / name for name in ("class_list.txt", "train_info.csv", "val_info.csv", "test_info.csv")}
    return {
        "CUB_200_2011.tgz": _tar_of({"CUB_200_2011": src / "CUB_200_2011"}, "w:gz"),
        "fgvc-aircraft-2013b.tar.gz": _tar_of({"fgvc-aircraft-2013b": src / "fgvc-aircraft-2013b"}, "w:gz"),
        "annot.tar": _tar_of(annot, "w"),
        "train.tar": _tar_of({"train_set": food / "train_set"}, "w"),
        "val.tar": _tar_of({"val_set": food / "val_set"}, "w"),
    }


def _serve(monkeypatch, server, task: str, files: dict[str, bytes], md5: str | None = None) -> None:
    """Point `task`'s registered archives at `server`, keeping their file names and folders.

    A registered checksum becomes the served file's (or `md5`); a missing one stays missing.
    """
    spec = get_task(task)
    archives = []
    for a in spec.archives:
        server.files[f"/files/{a.filename}"] = files[a.filename]
        checksum = (md5 or _md5(files[a.filename])) if a.md5 else None
        archives.append(dataclasses.replace(a, url=f"{server.url}/files/{a.filename}", md5=checksum))
    monkeypatch.setitem(_registry.TASKS, task, dataclasses.replace(spec, archives=tuple(archives)))


@pytest.mark.parametrize("task, classes", [("cub", 2), ("aircraft", 3), ("cub_aircraft", 5), ("foodx", 2)])
def test_each_task_downloads_into_the_layout_its_loader_reads(server, tmp_path: Path, monkeypatch, task, classes):
    """The registered archives (names, target folders) are all the loader needs, and no more."""
    _serve(monkeypatch, server, task, _official_archives(tmp_path))
    root = tmp_path / "data"
    dl.download(task, root, progress=False)
    assert len(load_task(task, root).classes) == classes
    fetched = sorted(path for path, _ in server.requests)
    assert fetched == sorted(f"/files/{a.filename}" for a in get_task(task).archives)
    assert len(fetched) == {"cub": 1, "aircraft": 1, "cub_aircraft": 2, "foodx": 3}[task]


def _cub_archive(tmp_path: Path) -> bytes:
    return _tar_of({"CUB_200_2011": make_cub(tmp_path / "src", per_class=(2, 2))}, "w:gz")


def test_download_cli_fetches_extracts_and_loads(server, tmp_path: Path, monkeypatch, capsys):
    data = _cub_archive(tmp_path)
    _serve(monkeypatch, server, "cub", {"CUB_200_2011.tgz": data})
    server.cut.add("/files/CUB_200_2011.tgz")
    root = tmp_path / "data"
    assert main(["download", "cub", "--root", str(root), "--no-progress"]) == 0
    assert "cub: 2 train, 2 test, 2 classes" in capsys.readouterr().out
    assert (root / "downloads" / "CUB_200_2011.tgz").read_bytes() == data
    assert len(load_task("cub", root).train) == 2
    assert len(server.requests) == 2  # cut, then resumed
    assert main(["download", "cub", "--root", str(root), "--no-progress"]) == 0
    assert len(server.requests) == 2  # already extracted: nothing fetched again


def test_download_cli_wrong_md5_is_one_line(server, tmp_path: Path, monkeypatch, capsys):
    _serve(monkeypatch, server, "cub", {"CUB_200_2011.tgz": _cub_archive(tmp_path)}, md5="f" * 32)
    assert main(["download", "cub", "--root", str(tmp_path / "data"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "md5" in err and "\n" not in err
    assert not (tmp_path / "data" / "CUB_200_2011").exists()
