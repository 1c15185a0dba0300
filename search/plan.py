"""What a search will train before it runs: epochs per phase, in 224-px equivalents, GPU-hours and wall time.

Three phases spend the compute: the paper's rows (full fidelity, never stopped), the
searched trials (at most every one at full fidelity; expected, under the rung ladder,
``1/rf**k`` of them past rung ``k``) and the confirmation's runs (full fidelity). A
ConvNeXt's cost grows with the input's area, so an epoch at ``s`` px counts as
``(s / 224)**2`` epochs at 224 px and plans of different sizes compare. Pure functions:
``python -m search.run --plan`` prints `format_plan` without data, Ray or a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

REFERENCE_SIZE = 224


@dataclass(frozen=True)
class Phase:
    name: str
    runs: int
    epochs: float  # expected, all runs together, at image_size
    max_epochs: float  # upper bound, all runs together
    image_size: int

    def at_224(self, epochs: float) -> float:
        return epochs * (self.image_size / REFERENCE_SIZE) ** 2


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
        Phase("paper rows", rows, rows * epochs, rows * epochs, image_size),
        Phase("searched trials", searched, searched * per_trial, searched * epochs, image_size),
        Phase("confirmation", confirm_runs, confirm_runs * epochs, confirm_runs * epochs, image_size),
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
                slots: int = 1) -> str:
    """A table: per phase the runs, the epochs (expected, at most) and their 224-px equivalents, and with an epoch
    time the GPU-hours and wall time (expected)."""
    head = f"{'phase':16s} {'runs':>5s} {'epochs':>8s} {'at most':>8s} {'224-px eq.':>11s} {'at most':>8s}"
    if epoch_seconds_224:
        head += f" {'GPU-h':>7s} {'wall h':>7s}"
    lines = [head]
    total = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    for p in phases:
        row = [p.epochs, p.max_epochs, p.at_224(p.epochs), p.at_224(p.max_epochs)]
        line = f"{p.name:16s} {p.runs:5d} " + " ".join(f"{v:{w}.0f}" for v, w in zip(row, (8, 8, 11, 8)))
        if epoch_seconds_224:
            c = cost(p, p.epochs, epoch_seconds_224, gpus_per_trial, slots)
            line += f" {c.gpu_hours:7.1f} {c.wall_hours:7.1f}"
            row += [c.gpu_hours, c.wall_hours]
        total = [t + v for t, v in zip(total, row + [0.0] * (6 - len(row)))]
        lines.append(line)
    last = f"{'total':16s} {sum(p.runs for p in phases):5d} " + " ".join(
        f"{v:{w}.0f}" for v, w in zip(total[:4], (8, 8, 11, 8)))
    if epoch_seconds_224:
        last += f" {total[4]:7.1f} {total[5]:7.1f}"
    lines.append(last)
    return "\n".join(lines)


def total_224(phases: Sequence[Phase]) -> float:
    """The plan's expected 224-px-equivalent epochs."""
    return sum(p.at_224(p.epochs) for p in phases)
