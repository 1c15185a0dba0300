"""The study's reports: the Pareto front as interactive HTML, trials.csv, pareto.csv, a table.

    python -m search.report --study studies/foodx

search.run writes them at the end; this command writes them at any time, also while the
search runs. The front is `search.budget.pareto_front` (Optuna's selection, honouring the
FLOPs budget). The plot draws every trial that has a GFLOPs figure:

- COMPLETE trials at (GFLOPs, validation top-1), the front joined by a line;
- early-stopped trials (PRUNED) at their best validation top-1 before they stopped, which
  is a partial-training figure and not comparable with the front;
- over-budget trials (PRUNED before training) at top-1 = 0: they have no accuracy;
- the paper's Table 1 rows (enqueued with ``paper_row``) labelled where they landed;
- the budget limit, ``(1 + budget) x baseline`` GFLOPs, as a vertical line.

Failed and unfinished trials have no point; the title counts them and trials.csv lists them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from search import budget
from search.export import pick_knee, pick_max_acc
from search.studydir import add_study_arguments, open_study

HTML_FILE, TRIALS_FILE, PARETO_FILE = "pareto.html", "trials.csv", "pareto.csv"
TABLE_COLUMNS = ["trial", "val_top1", "gflops", "vs_baseline", "pick", "paper_row", "scra_stages",
                 "scra_kernel", "dropout", "l2sp_lambda", "lr"]


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    trials_csv: Path
    pareto_csv: Path
    table: str  # the console table of the front (or why there is none)


def _gflops(trial: FrozenTrial) -> float:
    if trial.state == TrialState.COMPLETE and trial.values:
        return float(trial.values[1])
    return float(trial.user_attrs.get("gflops", math.nan))


def _best_curve(trial: FrozenTrial) -> float:
    curve = trial.user_attrs.get("curve") or []
    return float(max(curve)) if curve else math.nan


def _kind(trial: FrozenTrial, front: set[int]) -> str:
    """Which trace a trial is drawn in (and its ``kind`` column)."""
    if trial.state == TrialState.COMPLETE:
        if trial.number in front:
            return "front"
        return "complete" if budget.is_feasible(trial) else "complete_over_budget"
    if trial.state == TrialState.PRUNED:
        return "over_budget" if trial.user_attrs.get("over_budget") else "stopped_early"
    return trial.state.name.lower()


def trials_frame(study: optuna.Study, front: Sequence[FrozenTrial] | None = None) -> pd.DataFrame:
    """One row per trial: the objectives, the flattened user attrs and each param (``params_<name>``)."""
    front = budget.pareto_front(study) if front is None else front
    on_front = {t.number for t in front}
    baseline = study.user_attrs.get("baseline_gflops")
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        config = attrs.get("config") or {}
        gflops = _gflops(t)
        rows.append({
            "number": t.number,
            "state": t.state.name,
            "kind": _kind(t, on_front),
            "on_front": t.number in on_front,
            "val_top1": float(t.values[0]) if t.state == TrialState.COMPLETE and t.values else math.nan,
            "best_val_top1": _best_curve(t),
            "gflops": gflops,
            "vs_baseline": gflops / baseline - 1.0 if baseline else math.nan,
            "budget_excess": attrs.get(budget.EXCESS_ATTR, math.nan),
            "over_budget": attrs.get("over_budget"),
            "model_params": attrs.get("params"),
            "epochs_run": attrs.get("epochs_run"),
            "train_seconds": attrs.get("train_seconds"),
            "images_per_sec": attrs.get("images_per_sec"),
            "reason": attrs.get("reason", ""),
            "error": attrs.get("error", ""),
            "paper_row": attrs.get("paper_row", ""),
            "curve": json.dumps(attrs["curve"]) if "curve" in attrs else "",
            "scra_stages": json.dumps(config["model"]["scra_stages"]) if "model" in config else "",
            "duration_s": t.duration.total_seconds() if t.duration else math.nan,
            **{f"params_{name}": value for name, value in t.params.items()},
        })
    columns = ["number", "state", "kind", "on_front", "val_top1", "best_val_top1", "gflops"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def front_table(study: optuna.Study, front: Sequence[FrozenTrial]) -> pd.DataFrame:
    """The front, cheapest first, with the config fields a reader compares."""
    baseline = study.user_attrs.get("baseline_gflops")
    picks = {}
    if front:
        picks[pick_knee(front).number] = "knee"
        best = pick_max_acc(front).number
        picks[best] = "max-acc" if best not in picks else "max-acc, knee"
    rows = []
    for t in front:
        config = t.user_attrs.get("config") or {}
        model, optim = config.get("model", {}), config.get("optim", {})
        rows.append({
            "trial": t.number,
            "val_top1": t.values[0],
            "gflops": t.values[1],
            "vs_baseline": t.values[1] / baseline - 1.0 if baseline else math.nan,
            "pick": picks.get(t.number, ""),
            "paper_row": t.user_attrs.get("paper_row", ""),
            "scra_stages": " ".join(map(str, model.get("scra_stages", []))) or "-",
            "scra_kernel": model.get("scra_kernel"),
            "dropout": model.get("dropout"),
            "l2sp_lambda": optim.get("l2sp_lambda"),
            "lr": optim.get("lr"),
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _format_table(table: pd.DataFrame, counts: Counter, n_trials: int) -> str:
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    if table.empty:
        return f"No COMPLETE trial within the budget yet, so no Pareto front ({n_trials} trials: {summary or 'none'})."
    shown = table.copy()
    shown["val_top1"] = shown["val_top1"].map("{:.2%}".format)
    shown["gflops"] = shown["gflops"].map("{:.5g}".format)
    shown["vs_baseline"] = shown["vs_baseline"].map(lambda v: "" if pd.isna(v) else f"{v:+.2%}")
    shown["lr"] = shown["lr"].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.2e}")
    return f"Pareto front, {len(table)} of {n_trials} trials ({summary}):\n" + shown.to_string(index=False)


def _hover(t: FrozenTrial, kind: str, y: float) -> str:
    attrs = t.user_attrs
    if kind == "over_budget":
        what = "not trained (over budget)"
    elif kind == "stopped_early":
        what = f"best val top-1 {y:.2%} before stopping" if attrs.get("curve") else "no epoch finished"
    else:
        what = f"val top-1 {y:.2%}"
    lines = [f"<b>trial {t.number}</b> {t.state.name}" + (f" ({attrs['paper_row']})" if "paper_row" in attrs else "")]
    lines.append(f"{what}, {_gflops(t):.3f} GFLOPs, {attrs.get('epochs_run', '?')} epochs")
    if attrs.get("reason"):
        lines.append(f"reason: {attrs['reason']}")
    lines += [f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value}" for name, value in t.params.items()]
    return "<br>".join(lines)


_TRACES = {
    # kind: (legend name, marker)
    "front": ("Pareto front (COMPLETE, within budget)", dict(symbol="circle", size=11, color="#1f77b4")),
    "complete": ("COMPLETE, dominated", dict(symbol="circle-open", size=9, color="#1f77b4")),
    "complete_over_budget": ("COMPLETE but over budget", dict(symbol="circle-x-open", size=9, color="#d62728")),
    "stopped_early": ("Stopped early (PRUNED): best top-1 before stopping", dict(symbol="triangle-down-open", size=9, color="#ff7f0e")),
    "over_budget": ("Over budget (PRUNED, not trained): drawn at top-1 = 0", dict(symbol="x", size=9, color="#d62728")),
}


def _y(t: FrozenTrial, kind: str) -> float:
    if kind in ("front", "complete", "complete_over_budget"):
        return float(t.values[0])
    if kind == "stopped_early":
        best = _best_curve(t)
        return 0.0 if math.isnan(best) else best
    return 0.0


def pareto_figure(study: optuna.Study, front: Sequence[FrozenTrial]) -> go.Figure:
    on_front = {t.number for t in front}
    drawn: dict[str, list[FrozenTrial]] = {kind: [] for kind in _TRACES}
    undrawn: Counter = Counter()
    for t in study.get_trials(deepcopy=False):
        kind = _kind(t, on_front)
        if kind in drawn and not math.isnan(_gflops(t)):
            drawn[kind].append(t)
        else:
            undrawn[t.state.name] += 1
    drawn["front"].sort(key=lambda t: (t.values[1], -t.values[0]))

    fig = go.Figure()
    paper = []
    for kind, trials in drawn.items():
        if not trials:
            continue
        name, marker = _TRACES[kind]
        ys = [_y(t, kind) for t in trials]
        fig.add_trace(go.Scatter(
            x=[_gflops(t) for t in trials], y=ys, name=name, marker=marker,
            mode="lines+markers" if kind == "front" else "markers",
            hovertext=[_hover(t, kind, y) for t, y in zip(trials, ys)],
            hoverinfo="text",
        ))
        paper += [(t, y) for t, y in zip(trials, ys) if "paper_row" in t.user_attrs]
    if paper:
        fig.add_trace(go.Scatter(
            x=[_gflops(t) for t, _ in paper], y=[y for _, y in paper], name="Paper Table 1 rows",
            mode="markers+text", text=[t.user_attrs["paper_row"] for t, _ in paper], textposition="top center",
            marker=dict(symbol="star-open", size=16, color="#2ca02c"), hoverinfo="skip",
        ))

    attrs = study.user_attrs
    baseline, bud = attrs.get("baseline_gflops"), attrs.get("budget")
    if baseline is not None:
        fig.add_vline(x=baseline, line_dash="dot", line_color="grey",
                      annotation_text=f"baseline {baseline:.4g}", annotation_position="bottom right")
        if bud is not None:
            limit = budget.limit(baseline, bud)
            fig.add_vline(x=limit, line_dash="dash", line_color="#d62728",
                          annotation_text=f"budget +{bud:.0%}: {limit:.4g} GFLOPs", annotation_position="top right")
    about = ", ".join(str(attrs[k]) for k in ("task", "backbone") if k in attrs)
    title = f"{study.study_name}: validation top-1 vs GFLOPs" + (f" ({about})" if about else "")
    notes = []
    if not front:
        notes.append("no COMPLETE trial within the budget yet: no front")
    if undrawn:
        notes.append("not drawn: " + ", ".join(f"{n} {s}" for s, n in sorted(undrawn.items())) + " (see trials.csv)")
    if notes:
        title += "<br><sub>" + "; ".join(notes) + "</sub>"
    fig.update_layout(title=title, xaxis_title="GFLOPs per image", yaxis_title="validation top-1",
                      yaxis_tickformat=".0%", template="plotly_white", hovermode="closest",
                      legend=dict(orientation="h", y=-0.18))
    return fig


def _write_atomic(path: Path, write: Any) -> None:
    """Write via a temporary file so a reader (a browser, a second report) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)


def write_reports(study: optuna.Study, study_dir: str | Path) -> ReportPaths:
    """Write pareto.html, trials.csv and pareto.csv into ``study_dir``; works with no COMPLETE trial."""
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    front = budget.pareto_front(study)
    trials = trials_frame(study, front)
    table = front_table(study, front)
    numbers = [t.number for t in front]
    pareto = trials.set_index("number").loc[numbers].reset_index() if numbers else trials.iloc[0:0]
    pareto = pareto.assign(pick=list(table["pick"]))

    paths = ReportPaths(study_dir / HTML_FILE, study_dir / TRIALS_FILE, study_dir / PARETO_FILE,
                        _format_table(table, Counter(t.state.name for t in study.get_trials(deepcopy=False)), len(trials)))
    _write_atomic(paths.trials_csv, lambda p: trials.to_csv(p, index=False))
    _write_atomic(paths.pareto_csv, lambda p: pareto.to_csv(p, index=False))
    # plotly.js embedded: the file opens offline, as everything here must.
    _write_atomic(paths.html, lambda p: pareto_figure(study, front).write_html(p, include_plotlyjs=True))
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m search.report", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--out", help="where to write the reports (default: the study directory)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = open_study(args.study, args.storage)
        paths = write_reports(study, args.out or args.study)
    except (ValueError, FileNotFoundError, sqlalchemy.exc.SQLAlchemyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(paths.table)
    print(f"wrote {paths.html}, {paths.trials_csv}, {paths.pareto_csv}")


if __name__ == "__main__":
    main()
