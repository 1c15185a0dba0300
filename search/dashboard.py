"""What optuna-dashboard shows of a search: the objectives' names and each trial's learning curve.

The objectives are named with ``study.set_metric_names`` (the dashboard otherwise labels
them "Objective 0" and "Objective 1"). A multi-objective trial cannot ``report()``
intermediate values, so the dashboard's intermediate-value chart stays empty; the curve
is written instead as the trial's note (``optuna_dashboard.save_note``: Markdown kept in
the study's system attrs), which the trial's page renders: a sparkline and one row per
epoch of validation top-1, rewritten at each epoch. A note edited by hand in the
dashboard is overwritten at the trial's next epoch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import optuna

METRIC_NAMES = ("val_top1", "gflops")
_BARS = "▁▂▃▄▅▆▇█"


def name_objectives(study: optuna.Study) -> None:
    """Label the two objectives ``val_top1`` and ``gflops`` (stored with the study)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(METRIC_NAMES))


def sparkline(values: Sequence[float]) -> str:
    """One block character per value, scaled between the finite minimum and maximum ("×": not finite)."""
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    top = len(_BARS) - 1

    def bar(v: float) -> str:
        if not math.isfinite(v):
            return "×"
        return _BARS[round((v - lo) / (hi - lo) * top) if hi > lo else top // 2]

    return "".join(bar(v) for v in values)


def curve_note(curve: Sequence[float], epochs: int | None = None) -> str:
    """The Markdown note of a trial: the curve as a sparkline, its best epoch, and a table of every epoch."""
    of = f" of {epochs}" if epochs else ""
    lines = [f"**{METRIC_NAMES[0]} per epoch** ({len(curve)}{of} epochs run)", ""]
    if curve:
        finite = [(v, e) for e, v in enumerate(curve, 1) if math.isfinite(v)]
        best = f", best {max(finite)[0]:.4f} at epoch {max(finite)[1]}" if finite else ""
        lines += [f"`{sparkline(curve)}` last {curve[-1]:.4f}{best}", ""]
        lines += [f"| epoch | {METRIC_NAMES[0]} |", "|---:|---:|"]
        lines += [f"| {e} | {v:.4f} |" for e, v in enumerate(curve, 1)]
    return "\n".join(lines) + "\n"


def show_curve(trial: optuna.Trial, curve: Sequence[float], epochs: int | None = None) -> None:
    """Write ``curve`` (validation top-1 per epoch so far) as ``trial``'s note in the dashboard."""
    import optuna_dashboard

    optuna_dashboard.save_note(trial, curve_note(curve, epochs))
