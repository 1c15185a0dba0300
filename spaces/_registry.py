"""The registry of named spaces and the helpers that replay them.

A space is a define-by-run function ``space(trial, base, *, budget=None) -> RunConfig``:
it suggests parameters on an Optuna trial and returns ``base`` with the fields it
controls replaced. ``budget`` (GFLOPs allowed over the baseline, 0.05 = +5%) lets it leave
out choices that can never fit; a replay passes none, so every stored value replays.
Replaying it on an `optuna.trial.FixedTrial` turns a flat params dict (what Optuna stores
and what Ray Tune hands a trainable) back into the one config type, so nothing ever
translates params to a config by hand a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from fgmodel.config import RunConfig


class Space(Protocol):
    def __call__(self, trial: optuna.trial.BaseTrial, base: RunConfig, *, budget: float | None = None) -> RunConfig:
        ...


PaperRows = Callable[[RunConfig], list[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class _Entry:
    space: Space
    paper_rows: PaperRows


_SPACES: dict[str, _Entry] = {}


def register(name: str, *, paper_rows: PaperRows) -> Callable[[Space], Space]:
    """Decorator: register a space under ``name`` with the paper's Table 1 rows in its params."""

    def wrap(space: Space) -> Space:
        if name in _SPACES:
            raise ValueError(f"search space {name!r} is already registered")
        _SPACES[name] = _Entry(space, paper_rows)
        return space

    return wrap


def _entry(name: str) -> _Entry:
    try:
        return _SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r} (known: {', '.join(names())})") from None


def names() -> list[str]:
    return sorted(_SPACES)


def get(name: str) -> Space:
    return _entry(name).space


def config_from_params(name: str, params: Mapping[str, Any], base: RunConfig) -> RunConfig:
    """Replay space ``name`` on ``params``; a missing or an unused param raises ValueError.

    The check for unused params catches a params dict that belongs to another space (or
    to a different base) instead of silently dropping its values.
    """
    trial = optuna.trial.FixedTrial(dict(params))
    config = get(name)(trial, base)
    unused = sorted(set(params) - set(trial.params))
    if unused:
        raise ValueError(f"params not used by search space {name!r}: {', '.join(unused)}")
    return config


def paper_rows(name: str, base: RunConfig) -> list[tuple[str, dict[str, Any]]]:
    """(label, params) of the paper's Table 1 rows, in order, for ``study.enqueue_trial``."""
    return _entry(name).paper_rows(base)
