"""What a search will train before it runs: epochs per phase, in 224-px equivalents, GPU-hours and wall time.

Three phases spend the compute: the paper's rows (full fidelity, never stopped), the
searched trials (at most every one at full fidelity; expected, under the rung ladder,
``1/rf**k`` of them past rung ``k``) and the confirmation's runs (full fidelity). A
ConvNeXt's cost grows with the input's area, so an epoch at ``s`` px counts as
``(s / 224)**2`` epochs at 224 px and plans of different sizes compare. Pure functions:
``python -m search.run --plan`` prints `describe` without data, Ray or a GPU, and every
search prints it before its first trial. The rung ladder (`rung_ladder`) lives here so the
plan and the scheduler (`search.moasha`) count the same rungs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.spec import StudySpec

REFERENCE_SIZE = 224
PAPER_ROWS, SEARCHED, CONFIRMATION = "paper rows", "searched trials", "confirmation"  # the phases


@dataclass(frozen=True)
class Phase:
    name: str
    runs: int
    epochs: float  # expected, all runs together, at image_size
    max_epochs: float  # upper bound, all runs together
    image_size: int

    def at_224(self, epochs: float) -> float:
        return epochs * (self.image_size / REFERENCE_SIZE) ** 2


def rung_ladder(grace_period: float, reduction_factor: float, max_t: int) -> list[int]:
    """The rungs, counted down from the last epoch: ``max_t / rf**k`` rounded, none below ``grace_period``, ascending.

    Aligned with the end rather than grown from the grace period (3, 9, 27 of 30), so the
    last rung sits ``1/rf`` of the way to the end of a shortened schedule (10 -> 3, 1) and
    the epochs between the last rung and the end are few but not wasted on a lone cut.
    """
    if grace_period <= 0 or reduction_factor <= 1:
        raise ValueError(f"need grace_period > 0 and reduction_factor > 1, got {grace_period}, {reduction_factor}")
    rungs: list[int] = []
    level = max_t / reduction_factor
    while (rung := math.floor(level + 0.5)) >= max(grace_period, 1):
        if rung < max_t and (not rungs or rung < rungs[-1]):
            rungs.append(rung)
        level /= reduction_factor
    return rungs[::-1]


def expected_epochs(full: int, rungs: Sequence[float], reduction_factor: float) -> float:
    """Epochs one trial trains on average under successive halving with ``rungs`` (below ``full``).

    Every trial reaches the first rung; a fraction ``1/rf`` of those reaching a rung goes on.
    """
    total, reached, level = 0.0, 1.0, 0.0
    for rung in rungs:
        total += reached * (rung - level)
        level, reached = rung, reached / reduction_factor
    return total + reached * (full - level)


def search_plan(*, trials: int, paper_rows: int, epochs: int, image_size: int, rungs: Sequence[float],
                reduction_factor: float, confirm_runs: int) -> list[Phase]:
    """The phases of a search of ``trials`` trained trials (``paper_rows`` of them the paper's rows).

    ``epochs``: what a COMPLETE trial trains (the spec's, or fewer where the schedule
    dies first); ``rungs``: the scheduler's (empty: no early stopping); ``confirm_runs``:
    the confirmation's runs at most.
    """
    rows = min(paper_rows, trials)
    searched = trials - rows
    per_trial = expected_epochs(epochs, rungs, reduction_factor)
    return [
        Phase(PAPER_ROWS, rows, rows * epochs, rows * epochs, image_size),
        Phase(SEARCHED, searched, searched * per_trial, searched * epochs, image_size),
        Phase(CONFIRMATION, confirm_runs, confirm_runs * epochs, confirm_runs * epochs, image_size),
    ]


@dataclass(frozen=True)
class Cost:
    gpu_hours: float
    wall_hours: float


def cost(phase: Phase, epochs: float, epoch_seconds_224: float, gpus_per_trial: float, slots: int) -> Cost:
    """GPU-hours and wall hours of ``epochs`` of ``phase``: ``epoch_seconds_224`` per 224-px epoch of one trial
    on its ``gpus_per_trial``, ``slots`` trials at a time."""
    seconds = phase.at_224(epochs) * epoch_seconds_224
    return Cost(seconds * gpus_per_trial / 3600, seconds / max(slots, 1) / 3600)


def format_plan(phases: Sequence[Phase], *, epoch_seconds_224: float | None = None, gpus_per_trial: float = 1.0,
                slots: int | None = 1) -> str:
    """A table: per phase the image size, runs, the epochs (expected, at most) and their 224-px equivalents, and
    with an epoch time the GPU-hours and (``slots`` known) the wall time, expected."""
    hours = ["GPU-h"] + (["wall h"] if slots else []) if epoch_seconds_224 else []
    head = f"{'phase':16s} {'px':>4s} {'runs':>5s} {'epochs':>8s} {'at most':>8s} {'224-px eq.':>11s} {'at most':>8s}"
    lines = [head + "".join(f" {h:>7s}" for h in hours)]
    total = [0.0] * (4 + len(hours))
    for p in phases:
        row = [p.epochs, p.max_epochs, p.at_224(p.epochs), p.at_224(p.max_epochs)]
        if epoch_seconds_224:
            c = cost(p, p.epochs, epoch_seconds_224, gpus_per_trial, slots or 1)
            row += [c.gpu_hours, c.wall_hours][: len(hours)]
        total = [t + v for t, v in zip(total, row)]
        lines.append(f"{p.name:16s} {p.image_size:4d} {p.runs:5d} " + _numbers(row))
    lines.append(f"{'total':16s} {'':4s} {sum(p.runs for p in phases):5d} " + _numbers(total))
    return "\n".join(lines)


def _numbers(row: Sequence[float]) -> str:
    """Epochs as whole numbers in the table's widths, then hours to a tenth."""
    return " ".join(f"{v:{w}.0f}" for v, w in zip(row[:4], (8, 8, 11, 8))) + "".join(f" {v:7.1f}" for v in row[4:])


def total_224(phases: Sequence[Phase]) -> float:
    """The plan's expected 224-px-equivalent epochs."""
    return sum(p.at_224(p.epochs) for p in phases)


def dead_tail(epochs: int, trained: int, fraction: float | None) -> str | None:
    """Why a trial stops after ``trained`` of its ``epochs`` (None when it trains them all): the recorded reason."""
    if fraction is None or trained >= epochs:
        return None
    return f"schedule dead: lr <= {fraction * 100:g}% of its first value from epoch {trained + 1} of {epochs}"


def confirm_runs(block: Mapping[str, Any] | None, *, paper: bool, top: int, seeds: int) -> int:
    """The confirmation's runs at most: the ``top`` candidates and the single-run front's knee, plus the baseline
    and the best paper row when the paper's rows ran (`search.confirmed.choose_candidates`), times the seeds (a
    race's maximum: it stops dominated candidates sooner); ``top`` and ``seeds``: a missing key's defaults."""
    if block is None:
        return 0
    return (int(block.get("top", top)) + 1 + (2 if paper else 0)) * int(block.get("seeds", seeds))


@dataclass(frozen=True)
class Plan:
    """A search's phases and what they were computed from, for `describe`."""

    phases: list[Phase]
    epochs: int  # the spec's
    trained: int  # what a COMPLETE trial trains (fewer than ``epochs`` when the schedule dies first)
    rungs: list[int]
    reduction_factor: float
    gpus_per_trial: float
    slots: int | None  # trials at once; None: unknown here (no GPU on this machine)
    dead: str | None = None  # `dead_tail`'s reason, when the schedule is cut


def plan_for(spec: StudySpec, *, trained: int, paper_rows: int, slots: int | None, top: int, seeds: int) -> Plan:
    """The plan of ``spec`` whose complete trials train ``trained`` epochs, ``paper_rows`` of its trials the paper's."""
    rungs = [] if spec.scheduler == "fifo" else rung_ladder(min(spec.grace_period, trained), spec.reduction_factor,
                                                             trained)
    rows = paper_rows if spec.paper else 0
    phases = search_plan(trials=spec.trials, paper_rows=rows, epochs=trained, image_size=spec.image_size,
                         rungs=rungs, reduction_factor=spec.reduction_factor,
                         confirm_runs=confirm_runs(spec.confirm, paper=rows > 0, top=top, seeds=seeds))
    return Plan(phases, spec.epochs, trained, rungs, spec.reduction_factor, spec.gpus_per_trial, slots,
                dead_tail(spec.epochs, trained, spec.dead_lr_fraction))


def describe(plan: Plan, epoch_seconds_224: float | None = None) -> str:
    """The plan as printed by ``--plan`` and at the start of a search: what is trained, then the table."""
    cut = f"{plan.trained} of {plan.epochs} epochs" + (f" ({plan.dead})" if plan.dead else "")
    ladder = f"rungs at epochs {', '.join(map(str, plan.rungs))}, 1/{plan.reduction_factor:g} going on" \
        if plan.rungs else "no early stopping"
    slots = f"{plan.slots} at a time" if plan.slots else "slots unknown here (--concurrency N)"
    lines = [f"plan: a complete trial trains {cut}; {ladder}; {slots}"]
    lines.append(format_plan(plan.phases, epoch_seconds_224=epoch_seconds_224, gpus_per_trial=plan.gpus_per_trial,
                             slots=plan.slots))
    if epoch_seconds_224 is None:
        lines.append("(--epoch-seconds S, one 224-px epoch of one trial, adds the GPU-hours and the wall time)")
    elif not plan.slots:
        lines.append("(the wall time needs the slots: --concurrency N, the GPUs the search will have)")
    searched = [p for p in plan.phases if p.name == SEARCHED]
    if searched and searched[0].runs:
        lines.append(f"(searched trials: expected under the rungs, at most all at full fidelity; at the spec's "
                     f"{searched[0].image_size} px, smaller sizes drawn cost less)")
    return "\n".join(lines)
