"""The report's numbers: trials.csv and pareto.csv as pandas frames, and the console tables.

Every top-1 comes with its noise (`search.stats`): a single run's binomial standard error
on the study's ``val_images`` validation images; a confirmed trial's mean, standard error
and Student-t interval across seeds (its level printed), and its paired difference to the
baseline. The picks (``max-acc``, ``knee``) are the ones export makes: on the confirmed
means when there are any, else on the search's single runs
(`search.export.single_run_picks`). Under the confirmed table: the verdict, what the
confirmation cost against the fixed design, whether it is complete, and what its
intervals do not cover (`caveats`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from search import attrs, budget, pareto, stats
from search.confirmed import Confirmed, ConfirmedPoint
from search.export import single_run_picks
from search.trials import gflops_of

LEAD_COLUMNS = ["number", "state", "kind", "on_front", "val_top1", "val_top1_se", "best_val_top1", "gflops",
                "vs_baseline"]
# Per trial in trials.csv / pareto.csv: its confirmation (NaN / empty when it has none).
CONFIRM_COLUMNS = ["confirm_seeds", "mean_top1", "mean_top1_se", "mean_top1_ci", "diff_vs_baseline",
                   "diff_vs_baseline_se", "diff_vs_baseline_ci", "diff_vs_baseline_images_low",
                   "diff_vs_baseline_images_high", "on_mean_front", "diverged_seeds", "race_stop"]
TABLE_COLUMNS = ["trial", "val_top1", "se", "gflops", "vs_baseline", "pick", "paper_row", "scra_stages",
                 "scra_kernel", "dropout", "l2sp_lambda", "lr"]
CONFIRMED_COLUMNS = ["trial", "role", "seeds", "mean_top1", "ci", "vs_baseline_pp", "ci_pp", "images_ci_pp",
                     "gflops", "on_front", "pick", "status", "paper_row"]


def best_curve(trial: FrozenTrial) -> float:
    """The best validation top-1 of any epoch (NaN before the first): what an early-stopped trial reached."""
    curve = trial.user_attrs.get(attrs.CURVE) or []
    return float(max(curve)) if curve else math.nan


def single_se(trial: FrozenTrial, val_images: int | None) -> float:
    """The binomial standard error of a COMPLETE trial's one top-1 (NaN without a split size)."""
    if trial.state != TrialState.COMPLETE or not trial.values or not val_images:
        return math.nan
    return stats.binomial_se(float(trial.values[0]), int(val_images))


def kind(trial: FrozenTrial, front: set[int]) -> str:
    """The ``kind`` column, and the plot's trace: ``front``, ``complete``, ``over_budget``, ``stopped_early`` ..."""
    if trial.state == TrialState.COMPLETE:
        if trial.number in front:
            return "front"
        return "complete" if budget.is_feasible(trial) else "complete_over_budget"
    if trial.state == TrialState.PRUNED:
        return "over_budget" if trial.user_attrs.get(attrs.OVER_BUDGET) else "stopped_early"
    return trial.state.name.lower()


def trials_frame(study: optuna.Study, front: Sequence[FrozenTrial], confirmed: Confirmed | None = None) -> pd.DataFrame:
    """One row per trial: Optuna's ``trials_dataframe`` (params, user attrs without their
    ``user_attrs_`` prefix, the budget constraint) after the columns a reader sorts by."""
    on_front = {t.number for t in front}
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return pd.DataFrame(columns=LEAD_COLUMNS + CONFIRM_COLUMNS)
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    baseline = study.user_attrs.get(attrs.BASELINE_GFLOPS)
    optuna_frame = study.trials_dataframe(attrs=("number", "state", "duration", "params", "user_attrs", "constraints"))
    optuna_frame = optuna_frame.drop(columns=["number", "state", f"user_attrs_{attrs.CONFIG}"], errors="ignore")
    optuna_frame = optuna_frame.rename(columns=_column_name)
    optuna_frame["duration_s"] = optuna_frame.pop("duration").dt.total_seconds()
    lead = pd.DataFrame({
        "number": [t.number for t in trials],
        "state": [t.state.name for t in trials],
        "kind": [kind(t, on_front) for t in trials],
        "on_front": [t.number in on_front for t in trials],
        "val_top1": [float(t.values[0]) if t.state == TrialState.COMPLETE and t.values else math.nan for t in trials],
        "val_top1_se": [single_se(t, val_images) for t in trials],
        "best_val_top1": [best_curve(t) for t in trials],
        "gflops": [gflops_of(t) for t in trials],
        "vs_baseline": [gflops_of(t) / baseline - 1.0 if baseline else math.nan for t in trials],
        "scra_stages": [json.dumps(t.user_attrs[attrs.CONFIG]["model"]["scra_stages"])
                        if attrs.CONFIG in t.user_attrs else "" for t in trials],
    })
    lead = pd.concat([lead, _confirm_columns([t.number for t in trials], confirmed)], axis=1)
    frame = pd.concat([lead, optuna_frame.drop(columns=[c for c in lead if c in optuna_frame])], axis=1)
    # Lists (the curve) as JSON, so the CSV reads back with json.loads.
    return frame.apply(lambda col: col.map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v))


def _confirm_columns(numbers: Sequence[int], confirmed: Confirmed | None) -> pd.DataFrame:
    points = confirmed.points if confirmed else {}
    front = set(confirmed.front) if confirmed else set()
    level = confirmed.design.level if confirmed else stats.LEVEL
    nan = math.nan

    def diff(n: int) -> stats.Estimate | None:
        return points[n].vs_baseline if n in points else None

    def by_images(n: int) -> tuple[float, float, float] | None:
        return points[n].vs_baseline_images if n in points else None

    return pd.DataFrame({
        "confirm_seeds": [points[n].top1.n if n in points else 0 for n in numbers],
        "mean_top1": [points[n].top1.mean if n in points else nan for n in numbers],
        "mean_top1_se": [points[n].top1.se if n in points else nan for n in numbers],
        "mean_top1_ci": [points[n].top1.halfwidth(level) if n in points else nan for n in numbers],
        "diff_vs_baseline": [d.mean if (d := diff(n)) else nan for n in numbers],
        "diff_vs_baseline_se": [d.se if (d := diff(n)) else nan for n in numbers],
        "diff_vs_baseline_ci": [d.halfwidth(level) if (d := diff(n)) else nan for n in numbers],
        "diff_vs_baseline_images_low": [b[1] if (b := by_images(n)) else nan for n in numbers],
        "diff_vs_baseline_images_high": [b[2] if (b := by_images(n)) else nan for n in numbers],
        "on_mean_front": [n in front for n in numbers],
        "diverged_seeds": [" ".join(map(str, points[n].diverged)) if n in points else "" for n in numbers],
        "race_stop": [(points[n].stopped or "") if n in points else "" for n in numbers],
    }, columns=CONFIRM_COLUMNS)


def _column_name(column: str) -> str:
    """``user_attrs_curve`` -> ``curve``; the model's size (user attr ``params``) -> ``model_params``."""
    if column == f"user_attrs_{attrs.PARAMS}":
        return "model_params"
    if column == f"constraints_{budget.CONSTRAINT}":
        return "budget_excess"
    return column.removeprefix("user_attrs_")


def pick_labels(picks: dict[str, int]) -> dict[int, str]:
    """{"max-acc": 5, "knee": 4} -> {5: "max-acc", 4: "knee"}; one trial picked twice -> "max-acc, knee"."""
    labels: dict[int, str] = {}
    for how in pareto.PICKS:
        if how in picks:
            n = picks[how]
            labels[n] = f"{labels[n]}, {how}" if n in labels else how
    return labels


def pareto_frame(trials: pd.DataFrame, front: Sequence[FrozenTrial], confirmed: Confirmed | None) -> pd.DataFrame:
    """pareto.csv: the rows of ``trials`` (`trials_frame`) on the front or confirmed, cheapest first, with the picks."""
    picks = pick_labels(confirmed.picks if confirmed else single_run_picks(front))
    by_number = trials.set_index("number", drop=False)
    numbers = sorted({t.number for t in front} | set(confirmed.points if confirmed else ()),
                     key=lambda n: (by_number.loc[n, "gflops"], n))
    rows = by_number.loc[numbers].reset_index(drop=True) if numbers else trials.iloc[0:0]
    return rows.assign(pick=[picks.get(n, "") for n in numbers])


def front_table(study: optuna.Study, front: Sequence[FrozenTrial], confirmed: Confirmed | None = None) -> pd.DataFrame:
    """The front, cheapest first, with the config fields a reader compares.

    Its picks are the single-run ones unless runs are confirmed: then they rest on the
    means (`confirmed_table`) and this table has none.
    """
    baseline = study.user_attrs.get(attrs.BASELINE_GFLOPS)
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    picks = {} if confirmed else pick_labels(single_run_picks(front))
    rows = []
    for t in front:
        config = t.user_attrs.get(attrs.CONFIG) or {}
        model, optim = config.get("model", {}), config.get("optim", {})
        rows.append({
            "trial": t.number,
            "val_top1": t.values[0],
            "se": single_se(t, val_images),
            "gflops": t.values[1],
            "vs_baseline": t.values[1] / baseline - 1.0 if baseline else math.nan,
            "pick": picks.get(t.number, ""),
            "paper_row": t.user_attrs.get(attrs.PAPER_ROW, ""),
            "scra_stages": " ".join(map(str, model.get("scra_stages", []))) or "-",
            "scra_kernel": model.get("scra_kernel"),
            "dropout": model.get("dropout"),
            "l2sp_lambda": optim.get("l2sp_lambda"),
            "lr": optim.get("lr"),
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def status(p: ConfirmedPoint) -> str:
    """``diverged 2 3``, ``stopped r2`` (the race stopped it after round 2) or empty."""
    if p.diverged:
        return "diverged " + " ".join(map(str, p.diverged))
    return p.stopped.split(":")[0].replace("stopped after round ", "stopped r") if p.stopped else ""


def confirmed_table(confirmed: Confirmed) -> pd.DataFrame:
    """One row per confirmed trial, cheapest first: mean and t-interval across seeds, paired difference to the
    baseline with its t-interval, and whether it diverged or the race stopped it."""
    labels = pick_labels(confirmed.picks)
    level = confirmed.design.level
    rows = []
    for p in sorted(confirmed.points.values(), key=lambda p: (p.gflops, -p.top1.mean, p.number)):
        d = p.vs_baseline if p.number != confirmed.baseline else None
        rows.append({
            "trial": p.number,
            "role": p.role,
            "seeds": p.top1.n,
            "mean_top1": p.top1.mean,
            "ci": p.top1.halfwidth(level),
            "vs_baseline_pp": 100 * d.mean if d and d.n else math.nan,
            "ci_pp": 100 * d.halfwidth(level) if d and d.n else math.nan,
            "images_ci_pp": f"[{100 * b[1]:+.2f}, {100 * b[2]:+.2f}]" if (b := p.vs_baseline_images) else "",
            "gflops": p.gflops,
            "on_front": p.number in confirmed.front,
            "pick": labels.get(p.number, ""),
            "status": status(p),
            "paper_row": p.paper_row or "",
        })
    return pd.DataFrame(rows, columns=CONFIRMED_COLUMNS)


def caveats(confirmed: Confirmed) -> str:
    """What the intervals do not cover, and how the comparisons are corrected."""
    images = any(p.vs_baseline_images for p in confirmed.points.values())
    by_images = (f" images_ci_pp: the difference's {confirmed.design.level:.0%} interval from a paired bootstrap "
                 f"over the validation images and the seeds, which adds the noise of which images the split holds "
                 f"(coarse with few seeds; the verdict uses the t-intervals)." if images else "")
    return (f"Intervals: {confirmed.design.level:.0%} Student-t, a mean's over its own seeds (n - 1 degrees of "
            f"freedom), a difference's over the seed noise pooled across the configs (configs x seeds, a block "
            f"design); no standard error is taken below one image's rounding.{by_images} The comparisons with the "
            f"baseline, and with the leader, are Holm-corrected over the candidates compared. The validation split "
            f"that confirms also selected these candidates, so a winner's curse remains in the means: only final "
            f"training's test top-1 is free of it.")


def _pct(v: float) -> str:
    return "" if pd.isna(v) else f"{v:.2%}"


def console_table(study: optuna.Study, front: Sequence[FrozenTrial], confirmed: Confirmed | None = None) -> str:
    """The front as text (or why there is none), then the confirmed trials and the verdict on them."""
    counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    n_trials = sum(counts.values())
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    if not front:
        return f"No COMPLETE trial within the budget yet, so no Pareto front ({n_trials} trials: {summary or 'none'})."
    shown = front_table(study, front, confirmed)
    shown["val_top1"] = shown["val_top1"].map("{:.2%}".format)
    shown["se"] = shown["se"].map(_pct)
    shown["gflops"] = shown["gflops"].map("{:.5g}".format)
    shown["vs_baseline"] = shown["vs_baseline"].map(lambda v: "" if pd.isna(v) else f"{v:+.2%}")
    shown["lr"] = shown["lr"].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.2e}")
    if confirmed:
        shown = shown.drop(columns=["pick"])
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    noise = f"; se: binomial, {val_images} validation images" if val_images else ""
    text = f"Pareto front, {len(front)} of {n_trials} trials ({summary}), single runs{noise}:\n"
    text += shown.to_string(index=False)
    if confirmed:
        text += "\n\n" + _format_confirmed(confirmed)
    return text


def _format_confirmed(confirmed: Confirmed) -> str:
    shown = confirmed_table(confirmed)
    shown["mean_top1"] = shown["mean_top1"].map(_pct)
    shown["ci"] = shown["ci"].map(lambda v: "" if pd.isna(v) else f"+-{v:.2%}")
    shown["vs_baseline_pp"] = shown["vs_baseline_pp"].map(lambda v: "" if pd.isna(v) else f"{v:+.2f}")
    shown["ci_pp"] = shown["ci_pp"].map(lambda v: "" if pd.isna(v) else f"+-{v:.2f}")
    if not shown["images_ci_pp"].any():  # runs recorded before their per-image hits were
        shown = shown.drop(columns=["images_ci_pp"])
    shown["gflops"] = shown["gflops"].map("{:.5g}".format)
    shown["on_front"] = shown["on_front"].map({True: "yes", False: ""})
    level = f"{confirmed.design.level:.0%}"
    head = (f"Confirmed, {len(shown)} trials (mean +- the half-width of its {level} t-interval across seeds; "
            f"vs_baseline_pp: difference to the baseline, paired over seeds, in points, +- its {level} t-interval; "
            f"front and picks on the means of the stable configs):\n")
    lines = [shown.to_string(index=False), confirmed.verdict, confirmed.cost()]
    if confirmed.missing:
        lines.append(confirmed.incomplete()[0].upper() + confirmed.incomplete()[1:] + ": run search.confirm again.")
    return head + "\n".join([*lines, caveats(confirmed)])
