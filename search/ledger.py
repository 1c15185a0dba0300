"""Where a search's compute went, per phase, against its plan: the ledger of the console summary and the report.

The plan (`search.plan`) says before the run what each phase will train; the trials say
after it what they did: each search trial records its phase (``paper rows`` or ``searched
trials``), epochs and train seconds (epochs and evaluation), and the confirm study's records
are the confirmation. Every trial that trained an epoch counts, FAIL and cut-short ones
included (they cost the GPU all the same); over-budget proposals trained nothing. Pure
functions over trials and the study's attrs, so a test runs them on hand-made records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial

from search import attrs
from search.confirmed import DEFAULT_SEEDS, DEFAULT_TOP
from search.plan import CONFIRMATION, PAPER_ROWS, REFERENCE_SIZE, SEARCHED, confirm_runs, rung_ladder, search_plan


@dataclass(frozen=True)
class Spent:
    phase: str
    runs: int  # trials that trained at least one epoch
    epochs_224: float  # their epochs, in 224-px equivalents
    train_seconds: float  # their epochs' wall time, training and evaluation


def phase_of(trial: FrozenTrial) -> str:
    """A search trial's phase: its ``phase`` attr, else (a study made before it was recorded) its paper row."""
    return str(trial.user_attrs.get(attrs.PHASE) or (PAPER_ROWS if attrs.PAPER_ROW in trial.user_attrs else SEARCHED))


def _size(trial: FrozenTrial, default: int) -> int:
    config = trial.user_attrs.get(attrs.CONFIG) or {}
    return int((config.get("data") or {}).get("image_size", default))


def spent(trials: Sequence[FrozenTrial], records: Sequence[FrozenTrial] = (), image_size: int = REFERENCE_SIZE
          ) -> list[Spent]:
    """What each phase trained: the search's ``trials`` by `phase_of`, the confirm study's ``records``."""
    totals = {name: [0, 0.0, 0.0] for name in (PAPER_ROWS, SEARCHED, CONFIRMATION)}
    tagged = [(phase_of(t), t) for t in trials] + [(CONFIRMATION, r) for r in records]
    for phase, t in tagged:
        epochs = int(t.user_attrs.get(attrs.EPOCHS_RUN) or 0)
        if epochs <= 0:
            continue
        row = totals.setdefault(phase, [0, 0.0, 0.0])
        row[0] += 1
        row[1] += epochs * (_size(t, image_size) / REFERENCE_SIZE) ** 2
        row[2] += float(t.user_attrs.get(attrs.TRAIN_SECONDS) or 0.0)
    return [Spent(name, int(r[0]), r[1], r[2]) for name, r in totals.items()]


def planned(spec: Mapping[str, Any], trained: int, paper_rows: int) -> dict[str, float]:
    """The plan's expected 224-px-equivalent epochs per phase, from the study's stored spec (its ``spec`` attr)."""
    epochs = trained
    rungs = [] if spec.get("scheduler") == "fifo" else rung_ladder(
        min(int(spec.get("grace_period", 1)), epochs), float(spec.get("reduction_factor", 3)), epochs)
    phases = search_plan(
        trials=int(spec.get("trials", 0)), paper_rows=paper_rows, epochs=epochs,
        image_size=int(spec.get("image_size", REFERENCE_SIZE)), rungs=rungs,
        reduction_factor=float(spec.get("reduction_factor", 3)),
        confirm_runs=confirm_runs(spec.get("confirm"), paper=paper_rows > 0, top=DEFAULT_TOP, seeds=DEFAULT_SEEDS))
    return {p.name: p.at_224(p.epochs) for p in phases}


def format_ledger(rows: Sequence[Spent], plan: Mapping[str, float] | None = None) -> str:
    """The table: per phase the runs, the planned and spent 224-px-equivalent epochs, train hours and their share."""
    seconds = sum(r.train_seconds for r in rows)
    lines = ["compute by phase (224-px-equivalent epochs; train h: the trials' epochs, training and evaluation):",
             f"{'phase':16s} {'runs':>5s} {'planned':>8s} {'spent':>8s} {'train h':>8s} {'share':>6s}"]

    def line(name: str, runs: int, plan_epochs: float | None, epochs: float, secs: float) -> str:
        share = f"{secs / seconds:6.0%}" if seconds else f"{'':6s}"
        want = f"{plan_epochs:8.0f}" if plan_epochs is not None else f"{'':8s}"
        return f"{name:16s} {runs:5d} {want} {epochs:8.0f} {secs / 3600:8.2f} {share}"

    for r in rows:
        lines.append(line(r.phase, r.runs, None if plan is None else plan.get(r.phase, 0.0), r.epochs_224,
                          r.train_seconds))
    lines.append(line("total", sum(r.runs for r in rows), None if plan is None else sum(plan.values()),
                      sum(r.epochs_224 for r in rows), seconds))
    return "\n".join(lines)


def ledger(trials: Sequence[FrozenTrial], records: Sequence[FrozenTrial], study_attrs: Mapping[str, Any]) -> str:
    """The ledger of a study (its ``trials`` and its confirm study's ``records``), against its plan when the
    study holds its spec."""
    spec = study_attrs.get(attrs.SPEC)
    size = int((spec or {}).get("image_size", REFERENCE_SIZE))
    plan = None
    if spec:
        trained = int(study_attrs.get(attrs.TRAINED_EPOCHS) or spec.get("epochs", 1))
        rows = sum(1 for t in trials if attrs.PAPER_ROW in t.user_attrs and attrs.RETRY_OF not in t.user_attrs)
        plan = planned(spec, trained, rows)
    return format_ledger(spent(trials, records, size), plan)
