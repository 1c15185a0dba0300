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
    """
    from fgmodel.data import load_task

    root = tmp_path_factory.getbasetemp() / "demo-data"
    load_task("demo", root)
    return root
