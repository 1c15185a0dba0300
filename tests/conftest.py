"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run several times faster on one thread than on two oversubscribed cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """The generated demo set (default size and seed), made once per session; tests only read it.

    At the base temp dir's ``demo-data``, where tests that generate it themselves find it too.
    Its pretrained weights (``pretrained: demo``) are the tiny recipe's (`demo_weights`), at
    the real name: a search there loads them instead of pretraining for two minutes.
    """
    from demo_weights import build_tiny

    from fgmodel.data import load_task

    root = tmp_path_factory.getbasetemp() / "demo-data"
    load_task("demo", root)
    build_tiny(root)
    return root


@pytest.fixture(scope="session")
def small_demo_root(tmp_path_factory) -> Path:
    """The demo set at 20 images per class (16 to train: 320), made once per session.

    For tests of the machinery (searches, resume, loader workers) rather than of what a
    model learns: an epoch costs a quarter of the default set's. The folder has the
    default set's name, so a subprocess pointed at it reads it as it is; so do its tiny
    pretrained weights (`demo_weights`).
    """
    from demo_weights import build_tiny

    from fgmodel.data import demo, load_task

    root = tmp_path_factory.getbasetemp() / "small-demo-data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "PER_CLASS", 20)
        mp.setattr(demo, "TRAIN_PER_CLASS", 16)
        assert len(load_task("demo", root).train) == 320
    build_tiny(root)
    return root


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session (tests/pg_server.py); skipped without one, except in CI."""
    import os

    import pg_server

    try:
        with pg_server.server() as server:
            yield server
    except pg_server.Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh database on the session's server, as a SQLAlchemy URL (postgresql+psycopg://...)."""
    import re

    name = "t_" + re.sub(r"\W", "_", request.node.name).lower()[:50]
    return postgres_server.createdb(name)
