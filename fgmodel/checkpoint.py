"""Checkpoints that load with ``torch.load(weights_only=True)`` and RNG state as plain data.

A checkpoint holds only tensors and builtin containers (no pickled objects), is written
to a temporary file and renamed into place (a kill mid-write leaves the previous one
intact), and a file that cannot be read raises `CheckpointError` naming it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils import random_seed

from fgmodel._io import atomic_path
from fgmodel.cli import one_line

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated, or from an incompatible run."""


def seed_everything(seed: int) -> None:
    """Seed every RNG a training run draws from: python, numpy, torch CPU and every CUDA device.

    timm's `random_seed` does exactly that (``torch.manual_seed`` covers CUDA); numpy takes
    seeds in [0, 2**32), which `OptimConfig` checks.
    """
    random_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 32-bit seed that depends only on (run seed, epoch)."""
    return int(np.random.SeedSequence([seed % 2**63, epoch]).generate_state(1)[0])


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and lists, so `weights_only` loading accepts it."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of `rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["gauss"]))
    pyst = state["python"]
    random.setstate((pyst["version"], tuple(pyst["state"]), pyst["gauss"]))


def save_atomic(payload: Mapping[str, Any], path: str | Path) -> None:
    """`torch.save` the payload (plus the format version) to `path` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **payload}, tmp)


def load(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; any failure is one `CheckpointError` line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, wrong format: all one answer
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or not a checkpoint): "
                              f"{one_line(exc)}") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not an fgmodel checkpoint (format {FORMAT_VERSION})")
    missing = [key for key in required if key not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return data
