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

import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from fgmodel._io import atomic_path
from fgmodel.cli import run_main
from search import attrs, budget
from search.export import pick_knee, pick_max_acc
from search.studydir import STUDY_ERRORS, add_study_arguments, load_study

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
    return float(trial.user_attrs.get(attrs.GFLOPS, math.nan))


def _best_curve(trial: FrozenTrial) -> float:
    curve = trial.user_attrs.get(attrs.CURVE) or []
    return float(max(curve)) if curve else math.nan


def _kind(trial: FrozenTrial, front: set[int]) -> str:
    """Which trace a trial is drawn in (and its ``kind`` column)."""
    if trial.state == TrialState.COMPLETE:
        if trial.number in front:
            return "front"
        return "complete" if budget.is_feasible(trial) else "complete_over_budget"
    if trial.state == TrialState.PRUNED:
        return "over_budget" if trial.user_attrs.get(attrs.OVER_BUDGET) else "stopped_early"
    return trial.state.name.lower()


def trials_frame(study: optuna.Study, front: Sequence[FrozenTrial] | None = None) -> pd.DataFrame:
    """One row per trial: Optuna's ``trials_dataframe`` (params, user attrs without their
    ``user_attrs_`` prefix, the budget constraint) after the columns a reader sorts by."""
    front = budget.pareto_front(study) if front is None else front
    on_front = {t.number for t in front}
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return pd.DataFrame(columns=LEAD_COLUMNS)
    baseline = study.user_attrs.get(attrs.BASELINE_GFLOPS)
    optuna_frame = study.trials_dataframe(attrs=("number", "state", "duration", "params", "user_attrs", "constraints"))
    optuna_frame = optuna_frame.drop(columns=["number", "state", f"user_attrs_{attrs.CONFIG}"], errors="ignore")
    optuna_frame = optuna_frame.rename(columns=lambda c: _column_name(c))
    optuna_frame["duration_s"] = optuna_frame.pop("duration").dt.total_seconds()
    lead = pd.DataFrame({
        "number": [t.number for t in trials],
        "state": [t.state.name for t in trials],
        "kind": [_kind(t, on_front) for t in trials],
        "on_front": [t.number in on_front for t in trials],
        "val_top1": [float(t.values[0]) if t.state == TrialState.COMPLETE and t.values else math.nan for t in trials],
        "best_val_top1": [_best_curve(t) for t in trials],
        "gflops": [_gflops(t) for t in trials],
        "vs_baseline": [_gflops(t) / baseline - 1.0 if baseline else math.nan for t in trials],
        "scra_stages": [json.dumps(t.user_attrs[attrs.CONFIG]["model"]["scra_stages"])
                        if attrs.CONFIG in t.user_attrs else "" for t in trials],
    })
    frame = pd.concat([lead, optuna_frame.drop(columns=[c for c in lead if c in optuna_frame])], axis=1)
    # Lists (the curve) as JSON, so the CSV reads back with json.loads.
    return frame.apply(lambda col: col.map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v))


LEAD_COLUMNS = ["number", "state", "kind", "on_front", "val_top1", "best_val_top1", "gflops", "vs_baseline"]


def _column_name(column: str) -> str:
    """``user_attrs_curve`` -> ``curve``; the model's size (user attr ``params``) -> ``model_params``."""
    if column == f"user_attrs_{attrs.PARAMS}":
        return "model_params"
    if column == f"constraints_{budget.CONSTRAINT}":
        return "budget_excess"
    return column.removeprefix("user_attrs_")


def front_table(study: optuna.Study, front: Sequence[FrozenTrial]) -> pd.DataFrame:
    """The front, cheapest first, with the config fields a reader compares."""
    baseline = study.user_attrs.get(attrs.BASELINE_GFLOPS)
    picks = {}
    if front:
        picks[pick_knee(front).number] = "knee"
        best = pick_max_acc(front).number
        picks[best] = "max-acc" if best not in picks else "max-acc, knee"
    rows = []
    for t in front:
        config = t.user_attrs.get(attrs.CONFIG) or {}
        model, optim = config.get("model", {}), config.get("optim", {})
        rows.append({
            "trial": t.number,
            "val_top1": t.values[0],
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
    user = t.user_attrs
    if kind == "over_budget":
        what = "not trained (over budget)"
    elif kind == "stopped_early":
        what = f"best val top-1 {y:.2%} before stopping" if user.get(attrs.CURVE) else "no epoch finished"
    else:
        what = f"val top-1 {y:.2%}"
    row = f" ({user[attrs.PAPER_ROW]})" if attrs.PAPER_ROW in user else ""
    lines = [f"<b>trial {t.number}</b> {t.state.name}{row}"]
    lines.append(f"{what}, {_gflops(t):.3f} GFLOPs, {user.get(attrs.EPOCHS_RUN, '?')} epochs")
    if user.get(attrs.REASON):
        lines.append(f"reason: {user[attrs.REASON]}")
    lines += [f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value}"
              for name, value in t.params.items()]
    return "<br>".join(lines)


_TRACES = {
    # kind: (legend name, marker)
    "front": ("Pareto front (COMPLETE, within budget)", dict(symbol="circle", size=11, color="#1f77b4")),
    "complete": ("COMPLETE, dominated", dict(symbol="circle-open", size=9, color="#1f77b4")),
    "complete_over_budget": ("COMPLETE but over budget", dict(symbol="circle-x-open", size=9, color="#d62728")),
    "stopped_early": ("Stopped early (PRUNED): best top-1 before stopping",
                      dict(symbol="triangle-down-open", size=9, color="#ff7f0e")),
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
        paper += [(t, y) for t, y in zip(trials, ys) if attrs.PAPER_ROW in t.user_attrs]
    if paper:
        fig.add_trace(go.Scatter(
            x=[_gflops(t) for t, _ in paper], y=[y for _, y in paper], name="Paper Table 1 rows",
            mode="markers+text", text=[t.user_attrs[attrs.PAPER_ROW] for t, _ in paper], textposition="top center",
            marker=dict(symbol="star-open", size=16, color="#2ca02c"), hoverinfo="skip",
        ))

    about_study = study.user_attrs
    baseline, bud = about_study.get(attrs.BASELINE_GFLOPS), about_study.get("budget")
    if baseline is not None:
        fig.add_vline(x=baseline, line_dash="dot", line_color="grey",
                      annotation_text=f"baseline {baseline:.4g}", annotation_position="bottom right")
        if bud is not None:
            limit = budget.limit(baseline, bud)
            fig.add_vline(x=limit, line_dash="dash", line_color="#d62728",
                          annotation_text=f"budget +{bud:.0%}: {limit:.4g} GFLOPs", annotation_position="top right")
    about = ", ".join(str(about_study[k]) for k in ("task", "backbone") if k in about_study)
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
                        _format_table(table, Counter(t.state.name for t in study.get_trials(deepcopy=False)),
                                      len(trials)))
    # Through a temporary file each, so a reader (a browser, a second report) never sees half a file.
    with atomic_path(paths.trials_csv) as tmp:
        trials.to_csv(tmp, index=False)
    with atomic_path(paths.pareto_csv) as tmp:
        pareto.to_csv(tmp, index=False)
    with atomic_path(paths.html) as tmp:  # plotly.js embedded: the file opens offline, as everything here must
        pareto_figure(study, front).write_html(tmp, include_plotlyjs=True)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.report", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--out", help="where to write the reports (default: the study directory)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def report() -> None:
        paths = write_reports(load_study(args.study, args.storage), args.out or args.study)
        print(paths.table)
        print(f"wrote {paths.html}, {paths.trials_csv}, {paths.pareto_csv}")

    return run_main(report, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
