"""The demo's pretraining at a tiny recipe (120 images, 1 epoch, 32 px): a second, not two minutes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgmodel import pretrain_demo

TINY = pretrain_demo.Recipe(per_class=2, held_out=1, image_size=32, epochs=1, batch_size=16)


def build_tiny(root: Path) -> Path:
    """The tiny weights at the real name under ``root``, so searches there (and subprocesses) find them built."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pretrain_demo, "RECIPE", TINY)
        return pretrain_demo.ensure(root, progress=False)
