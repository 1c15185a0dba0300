"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

The server listens on 127.0.0.1 on a free port (and a Unix socket inside its own folder),
with password authentication, fsync off (the data is thrown away). PostgreSQL refuses to
run as root, so as root the binaries run as the ``postgres`` user that Debian's package
creates. ``make test`` installs the package (``make sysdeps``); outside CI a machine
without it skips the tests that need it, in CI (env ``CI`` set) they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "fgsearch"
PASSWORD = "pg-test-secret"
RUN_AS = "postgres"


class Unavailable(RuntimeError):
    """No PostgreSQL binaries on this machine."""


def bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` (Debian), else the folder of ``initdb`` on PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise Unavailable("no PostgreSQL server binaries (initdb): `make sysdeps` installs Debian's postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    bindir: Path
    folder: Path

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for ``database`` on this server, with the psycopg 3 driver."""
        return f"postgresql+psycopg://{USER}:{PASSWORD}@{self.host}:{self.port}/{database}"

    def createdb(self, database: str) -> str:
        _run(
            [str(self.bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", USER, database],
            env={"PGPASSWORD": PASSWORD},
        )
        return self.url(database)


def _as_user() -> list[str]:
    """Root runs the server as the unprivileged ``postgres`` user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        raise Unavailable(f"running as root and there is no {RUN_AS!r} user to run PostgreSQL as") from None
    return ["runuser", "-u", RUN_AS, "--"]


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    env = {**os.environ, **(env or {})}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@contextlib.contextmanager
def server() -> Iterator[Server]:
    """Start a fresh server; stop it and delete its folder on exit."""
    bin_ = bindir()
    prefix = _as_user()
    # Not under pytest's tmp_path: that is private to root (0700), and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="fgsearch-pg-"))
    data = folder / "data"
    try:
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if prefix:
            user = pwd.getpwnam(RUN_AS)
            for path in (folder, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        _run([*prefix, str(bin_ / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
              "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync"])
        port = free_port()
        conf = (
            f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{folder}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n"
        )
        with (data / "postgresql.conf").open("a") as f:
            f.write(conf)
        _run([*prefix, str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "start"])
        try:
            yield Server("127.0.0.1", port, bin_, folder)
        finally:
            _run([*prefix, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
