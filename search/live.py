"""A trial as the driver follows it while Ray runs it: its curve so far, and why it failed.

The search (`search.searcher.StudySearcher`, through Tune's searcher hooks) and the
confirmation (`search.confirm.Recorder`, through a Tune callback) each keep one Optuna
record per Ray trial, fed by the same reports from `search.trainable.train_trial`: one per
epoch, and on the way out an error line or a non-finite status. Ray's retries
(``FailureConfig.max_failures``) replay that stream in the same Ray trial from epoch 1, so
what a failed attempt left (its error, its curve) must be forgotten when epoch 1 comes
again. That rule, and what each epoch writes on the record, live here once; what the end
means (COMPLETE, PRUNED or FAIL) is each caller's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from fgmodel.cli import one_line
from search import attrs
from search.dashboard import show_curve

METRIC = "val_top1"
PROCESS_DIED = "the trial's process died (see the Ray logs)"


@dataclass
class LiveTrial:
    """The Optuna record of one Ray trial and what its reports said so far."""

    trial: optuna.Trial
    gflops: float
    epochs: int  # the full fidelity, for the dashboard's "n of N epochs"
    curve: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    images_per_sec: float = 0.0
    data_wait: list[float] = field(default_factory=list)  # per epoch, the share spent waiting for the loaders
    error: str | None = None
    non_finite: str | None = None
    val_hits: str = ""  # the last epoch's per-image top-1 hits: the confirmation records them, the search does not

    def record(self, result: Mapping[str, Any]) -> None:
        """Take one report: an error line, a non-finite status, or an epoch (written to the record at once,
        so the dashboard shows the curve live)."""
        if "error" in result:
            self.error = str(result["error"])
            return
        if result.get("status") == "non_finite":
            self.non_finite = str(result.get("reason") or "non-finite loss")
            return
        if METRIC not in result:
            return
        epoch = int(result.get("epoch", result.get("training_iteration", len(self.curve) + 1)))
        if epoch == 1 and (self.error or self.non_finite or self.curve):
            # Ray re-ran the trial and it starts again: the failed attempt's leavings are not this run's.
            self.error = self.non_finite = None
            self.curve, self.data_wait = [], []
            self.train_seconds = self.images_per_sec = 0.0
        self.curve = self.curve[: epoch - 1] + [float(result[METRIC])]
        self.data_wait = self.data_wait[: epoch - 1] + [round(float(result.get("data_wait", 0.0)), 4)]
        self.train_seconds = float(result.get("train_seconds", self.train_seconds))
        self.images_per_sec = float(result.get("images_per_sec", self.images_per_sec))
        self.val_hits = str(result.get(attrs.VAL_HITS, ""))
        for key, value in {
            attrs.CURVE: self.curve,
            attrs.EPOCHS_RUN: len(self.curve),
            attrs.TRAIN_SECONDS: self.train_seconds,
            attrs.IMAGES_PER_SEC: self.images_per_sec,
            attrs.DATA_WAIT: self.data_wait,
            attrs.NODE_ID: str(result.get(attrs.NODE_ID, "")),
        }.items():
            self.trial.set_user_attr(key, value)
        show_curve(self.trial, self.curve, self.epochs)  # the trial's note in optuna-dashboard

    def failure(self, errored: bool) -> str | None:
        """The error line the trial ended on: its own report's, else Ray's word that it errored (None: it did not)."""
        return self.error or (PROCESS_DIED if errored else None)

    @property
    def full(self) -> bool:
        """Whether every epoch ran."""
        return len(self.curve) >= self.epochs


def error_line(exc: BaseException) -> str:
    """``Type: message line`` (or ``Type``): how a trial's error is recorded; ``reason`` names the type."""
    line = one_line(exc)
    return type(exc).__name__ if line == type(exc).__name__ else f"{type(exc).__name__}: {line}"
