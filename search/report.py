"""The study's reports: the Pareto front as interactive HTML, trials.csv, pareto.csv, a table.

    python -m search.report --study studies/foodx

search.run writes them at the end; this command writes them at any time, also while the
search runs. The front is `search.pareto.pareto_front` (Optuna's selection, honouring the
FLOPs budget). The plot draws every trial that has a GFLOPs figure:

- COMPLETE trials at (GFLOPs, validation top-1), the front joined by a line;
- early-stopped trials (PRUNED) at their best validation top-1 before they stopped, which
  is a partial-training figure and not comparable with the front;
- over-budget trials (PRUNED before training) at top-1 = 0: they have no accuracy;
- the paper's Table 1 rows (enqueued with ``paper_row``) labelled where they landed;
- the budget limit, ``(1 + budget) x baseline`` GFLOPs, as a vertical line.

Failed and unfinished trials have no point; the title counts them and trials.csv lists them.

Noise (`search.stats`). A COMPLETE trial is one run: its error bar is the binomial
standard error of its top-1 on the validation split's n images (study attr
``val_images``). The trials `search.confirm` re-trained with new seeds are drawn again at
their mean +- the standard error across seeds, with their own front (recomputed on the
means); pareto.csv and the console add their means, their paired difference to the
baseline and a plain sentence on whether the top candidates can be told apart. The picks
(``max-acc``, ``knee``) then rest on the means, as `search.export`'s do.
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
from search import attrs, budget, pareto, stats
from search.confirmed import Confirmed, ConfirmedPoint, summarize
from search.studydir import STUDY_ERRORS, add_study_arguments, load_confirm_study, load_study
from search.trials import gflops_of

HTML_FILE, TRIALS_FILE, PARETO_FILE = "pareto.html", "trials.csv", "pareto.csv"
TABLE_COLUMNS = ["trial", "val_top1", "se", "gflops", "vs_baseline", "pick", "paper_row", "scra_stages",
                 "scra_kernel", "dropout", "l2sp_lambda", "lr"]
CONFIRMED_COLUMNS = ["trial", "role", "seeds", "mean_top1", "se", "vs_baseline_pp", "diff_se_pp", "gflops",
                     "on_front", "pick", "paper_row"]
# Per trial in trials.csv / pareto.csv: its confirmation (NaN / empty when it has none).
CONFIRM_COLUMNS = ["confirm_seeds", "mean_top1", "mean_top1_se", "diff_vs_baseline", "diff_vs_baseline_se",
                   "on_mean_front"]


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    trials_csv: Path
    pareto_csv: Path
    table: str  # the console table of the front (or why there is none)


def _best_curve(trial: FrozenTrial) -> float:
    curve = trial.user_attrs.get(attrs.CURVE) or []
    return float(max(curve)) if curve else math.nan


def _single_se(trial: FrozenTrial, val_images: int | None) -> float:
    """The binomial standard error of a COMPLETE trial's one top-1 (NaN without a split size)."""
    if trial.state != TrialState.COMPLETE or not trial.values or not val_images:
        return math.nan
    return stats.binomial_se(float(trial.values[0]), int(val_images))


def _kind(trial: FrozenTrial, front: set[int]) -> str:
    """Which trace a trial is drawn in (and its ``kind`` column)."""
    if trial.state == TrialState.COMPLETE:
        if trial.number in front:
            return "front"
        return "complete" if budget.is_feasible(trial) else "complete_over_budget"
    if trial.state == TrialState.PRUNED:
        return "over_budget" if trial.user_attrs.get(attrs.OVER_BUDGET) else "stopped_early"
    return trial.state.name.lower()


def trials_frame(study: optuna.Study, front: Sequence[FrozenTrial] | None = None,
                 confirmed: Confirmed | None = None) -> pd.DataFrame:
    """One row per trial: Optuna's ``trials_dataframe`` (params, user attrs without their
    ``user_attrs_`` prefix, the budget constraint) after the columns a reader sorts by."""
    front = pareto.pareto_front(study) if front is None else front
    on_front = {t.number for t in front}
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return pd.DataFrame(columns=LEAD_COLUMNS + CONFIRM_COLUMNS)
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
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
        "val_top1_se": [_single_se(t, val_images) for t in trials],
        "best_val_top1": [_best_curve(t) for t in trials],
        "gflops": [gflops_of(t) for t in trials],
        "vs_baseline": [gflops_of(t) / baseline - 1.0 if baseline else math.nan for t in trials],
        "scra_stages": [json.dumps(t.user_attrs[attrs.CONFIG]["model"]["scra_stages"])
                        if attrs.CONFIG in t.user_attrs else "" for t in trials],
    })
    lead = pd.concat([lead, _confirm_columns([t.number for t in trials], confirmed)], axis=1)
    frame = pd.concat([lead, optuna_frame.drop(columns=[c for c in lead if c in optuna_frame])], axis=1)
    # Lists (the curve) as JSON, so the CSV reads back with json.loads.
    return frame.apply(lambda col: col.map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v))


LEAD_COLUMNS = ["number", "state", "kind", "on_front", "val_top1", "val_top1_se", "best_val_top1", "gflops",
                "vs_baseline"]


def _confirm_columns(numbers: Sequence[int], confirmed: Confirmed | None) -> pd.DataFrame:
    points = confirmed.points if confirmed else {}
    front = set(confirmed.front) if confirmed else set()
    nan = math.nan

    def diff(n: int) -> stats.Estimate | None:
        return points[n].vs_baseline if n in points else None

    return pd.DataFrame({
        "confirm_seeds": [points[n].top1.n if n in points else 0 for n in numbers],
        "mean_top1": [points[n].top1.mean if n in points else nan for n in numbers],
        "mean_top1_se": [points[n].top1.se if n in points else nan for n in numbers],
        "diff_vs_baseline": [d.mean if (d := diff(n)) else nan for n in numbers],
        "diff_vs_baseline_se": [d.se if (d := diff(n)) else nan for n in numbers],
        "on_mean_front": [n in front for n in numbers],
    }, columns=CONFIRM_COLUMNS)


def _column_name(column: str) -> str:
    """``user_attrs_curve`` -> ``curve``; the model's size (user attr ``params``) -> ``model_params``."""
    if column == f"user_attrs_{attrs.PARAMS}":
        return "model_params"
    if column == f"constraints_{budget.CONSTRAINT}":
        return "budget_excess"
    return column.removeprefix("user_attrs_")


def _pick_labels(picks: dict[str, int]) -> dict[int, str]:
    """{"max-acc": 5, "knee": 4} -> {5: "max-acc", 4: "knee"}; one trial picked twice -> "max-acc, knee"."""
    labels: dict[int, str] = {}
    for how in stats.PICKS:
        if how in picks:
            n = picks[how]
            labels[n] = f"{labels[n]}, {how}" if n in labels else how
    return labels


def single_run_picks(front: Sequence[FrozenTrial]) -> dict[str, int]:
    """The picks on the search's own (single-run) front: what export picks when nothing is confirmed."""
    points = [stats.Point(t.number, float(t.values[0]), float(t.values[1])) for t in front]
    return {how: stats.pick(points, how).number for how in stats.PICKS} if points else {}


def front_table(study: optuna.Study, front: Sequence[FrozenTrial], confirmed: Confirmed | None = None) -> pd.DataFrame:
    """The front, cheapest first, with the config fields a reader compares.

    Its picks are the single-run ones unless runs are confirmed: then they rest on the
    means (`confirmed_table`) and this table has none.
    """
    baseline = study.user_attrs.get(attrs.BASELINE_GFLOPS)
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    picks = {} if confirmed else _pick_labels(single_run_picks(front))
    rows = []
    for t in front:
        config = t.user_attrs.get(attrs.CONFIG) or {}
        model, optim = config.get("model", {}), config.get("optim", {})
        rows.append({
            "trial": t.number,
            "val_top1": t.values[0],
            "se": _single_se(t, val_images),
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


def confirmed_table(confirmed: Confirmed) -> pd.DataFrame:
    """One row per confirmed trial, cheapest first: mean and SE across seeds, paired difference to the baseline."""
    labels = _pick_labels(confirmed.picks)
    rows = []
    for p in sorted(confirmed.points.values(), key=lambda p: (p.gflops, -p.top1.mean, p.number)):
        d = p.vs_baseline
        rows.append({
            "trial": p.number,
            "role": p.role,
            "seeds": p.top1.n,
            "mean_top1": p.top1.mean,
            "se": p.top1.se,
            "vs_baseline_pp": 100 * d.mean if d and p.number != confirmed.baseline else math.nan,
            "diff_se_pp": 100 * d.se if d and p.number != confirmed.baseline else math.nan,
            "gflops": p.gflops,
            "on_front": p.number in confirmed.front,
            "pick": labels.get(p.number, ""),
            "paper_row": p.paper_row or "",
        })
    return pd.DataFrame(rows, columns=CONFIRMED_COLUMNS)


def _pct(v: float) -> str:
    return "" if pd.isna(v) else f"{v:.2%}"


def _format_table(table: pd.DataFrame, counts: Counter, n_trials: int, val_images: int | None = None,
                  confirmed: Confirmed | None = None) -> str:
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    if table.empty:
        return f"No COMPLETE trial within the budget yet, so no Pareto front ({n_trials} trials: {summary or 'none'})."
    shown = table.copy()
    shown["val_top1"] = shown["val_top1"].map("{:.2%}".format)
    shown["se"] = shown["se"].map(_pct)
    shown["gflops"] = shown["gflops"].map("{:.5g}".format)
    shown["vs_baseline"] = shown["vs_baseline"].map(lambda v: "" if pd.isna(v) else f"{v:+.2%}")
    shown["lr"] = shown["lr"].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.2e}")
    if confirmed:
        shown = shown.drop(columns=["pick"])
    noise = f"; se: binomial, {val_images} validation images" if val_images else ""
    text = f"Pareto front, {len(table)} of {n_trials} trials ({summary}), single runs{noise}:\n"
    text += shown.to_string(index=False)
    if confirmed:
        text += "\n\n" + _format_confirmed(confirmed)
    return text


def _format_confirmed(confirmed: Confirmed) -> str:
    shown = confirmed_table(confirmed)
    shown["mean_top1"] = shown["mean_top1"].map(_pct)
    shown["se"] = shown["se"].map(_pct)
    shown["vs_baseline_pp"] = shown["vs_baseline_pp"].map(lambda v: "" if pd.isna(v) else f"{v:+.2f}")
    shown["diff_se_pp"] = shown["diff_se_pp"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    shown["gflops"] = shown["gflops"].map("{:.5g}".format)
    shown["on_front"] = shown["on_front"].map({True: "yes", False: ""})
    head = (f"Confirmed, {len(shown)} trials (mean and se across seeds; vs_baseline_pp: paired difference to the "
            f"baseline on the same seeds, in points; front and picks on the means):\n")
    return head + shown.to_string(index=False) + "\n" + confirmed.verdict


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
    lines.append(f"{what}, {gflops_of(t):.3f} GFLOPs, {user.get(attrs.EPOCHS_RUN, '?')} epochs")
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


def _error_bars(values: Sequence[float]) -> dict | None:
    """Plotly error bars of +- one standard error; None when there is none to draw."""
    if all(math.isnan(v) for v in values):
        return None
    return dict(type="data", array=[0.0 if math.isnan(v) else v for v in values], visible=True, thickness=1, width=3)


def _confirmed_hover(p: ConfirmedPoint, baseline: int | None) -> str:
    lines = [f"<b>trial {p.number}</b> confirmed ({p.role}" + (f", {p.paper_row}" if p.paper_row else "") + ")"]
    se = "" if math.isnan(p.top1.se) else f" +- {p.top1.se:.2%}"
    lines.append(f"mean val top-1 {p.top1.mean:.2%}{se} over {p.top1.n} seeds, {p.gflops:.3f} GFLOPs")
    lines.append("seeds: " + ", ".join(f"{seed}: {v:.2%}" for seed, v in p.runs.items()))
    d = p.vs_baseline
    if d is not None and p.number != baseline and d.n:
        se = "" if math.isnan(d.se) else f" +- {100 * d.se:.2f}"
        lines.append(f"minus the baseline (trial {baseline}): {100 * d.mean:+.2f}{se} pp over {d.n} paired seeds")
    return "<br>".join(lines)


def pareto_figure(study: optuna.Study, front: Sequence[FrozenTrial], confirmed: Confirmed | None = None) -> go.Figure:
    on_front = {t.number for t in front}
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    drawn: dict[str, list[FrozenTrial]] = {kind: [] for kind in _TRACES}
    undrawn: Counter = Counter()
    for t in study.get_trials(deepcopy=False):
        kind = _kind(t, on_front)
        if kind in drawn and not math.isnan(gflops_of(t)):
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
        complete = kind in ("front", "complete", "complete_over_budget")
        fig.add_trace(go.Scatter(
            x=[gflops_of(t) for t in trials], y=ys, name=name, marker=marker,
            mode="lines+markers" if kind == "front" else "markers",
            error_y=_error_bars([_single_se(t, val_images) for t in trials]) if complete else None,
            hovertext=[_hover(t, kind, y) for t, y in zip(trials, ys)],
            hoverinfo="text",
        ))
        paper += [(t, y) for t, y in zip(trials, ys) if attrs.PAPER_ROW in t.user_attrs]
    if paper:
        fig.add_trace(go.Scatter(
            x=[gflops_of(t) for t, _ in paper], y=[y for _, y in paper], name="Paper Table 1 rows",
            mode="markers+text", text=[t.user_attrs[attrs.PAPER_ROW] for t, _ in paper], textposition="top center",
            marker=dict(symbol="star-open", size=16, color="#2ca02c"), hoverinfo="skip",
        ))

    if confirmed:
        points = sorted(confirmed.points.values(), key=lambda p: (p.gflops, -p.top1.mean, p.number))
        fig.add_trace(go.Scatter(
            x=[p.gflops for p in points], y=[p.top1.mean for p in points], mode="markers",
            name=f"Confirmed: mean +- SE over up to {confirmed.max_seeds} new seeds",
            marker=dict(symbol="diamond", size=12, color="#9467bd"),
            error_y=_error_bars([p.top1.se for p in points]),
            hovertext=[_confirmed_hover(p, confirmed.baseline) for p in points], hoverinfo="text",
        ))
        mean_front = [confirmed.points[n] for n in confirmed.front]
        fig.add_trace(go.Scatter(
            x=[p.gflops for p in mean_front], y=[p.top1.mean for p in mean_front], mode="lines",
            name="Front on the confirmed means", line=dict(color="#9467bd", dash="dash"), hoverinfo="skip",
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
    if val_images:
        notes.append(f"error bars: +- 1 standard error (single runs: binomial, {val_images} validation images)")
    if confirmed:
        notes.append(confirmed.verdict)
    if notes:
        title += "".join(f"<br><sub>{note}</sub>" for note in notes)
    fig.update_layout(title=title, xaxis_title="GFLOPs per image", yaxis_title="validation top-1",
                      yaxis_tickformat=".0%", template="plotly_white", hovermode="closest",
                      legend=dict(orientation="h", y=-0.18))
    return fig


def write_reports(study: optuna.Study, study_dir: str | Path, confirm: optuna.Study | None = None) -> ReportPaths:
    """Write pareto.html, trials.csv and pareto.csv into ``study_dir``; works with no COMPLETE trial.

    ``confirm``: the study's ``<name>:confirm`` study (`search.confirm`), when there is one.
    pareto.csv holds the front and every confirmed trial, cheapest first; its ``pick``
    column holds the picks on the confirmed means when there are any.
    """
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    front = pareto.pareto_front(study)
    confirmed = summarize(study, confirm)
    trials = trials_frame(study, front, confirmed)
    table = front_table(study, front, confirmed)
    picks = _pick_labels(confirmed.picks if confirmed else single_run_picks(front))
    numbers = {t.number for t in front} | set(confirmed.points if confirmed else ())
    by_number = trials.set_index("number", drop=False)
    numbers = sorted(numbers, key=lambda n: (by_number.loc[n, "gflops"], n))
    front_rows = by_number.loc[numbers].reset_index(drop=True) if numbers else trials.iloc[0:0]
    front_rows = front_rows.assign(pick=[picks.get(n, "") for n in numbers])

    counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    paths = ReportPaths(study_dir / HTML_FILE, study_dir / TRIALS_FILE, study_dir / PARETO_FILE,
                        _format_table(table, counts, len(trials), study.user_attrs.get(attrs.VAL_IMAGES), confirmed))
    # Through a temporary file each, so a reader (a browser, a second report) never sees half a file.
    with atomic_path(paths.trials_csv) as tmp:
        trials.to_csv(tmp, index=False)
    with atomic_path(paths.pareto_csv) as tmp:
        front_rows.to_csv(tmp, index=False)
    with atomic_path(paths.html) as tmp:  # plotly.js embedded: the file opens offline, as everything here must
        pareto_figure(study, front, confirmed).write_html(tmp, include_plotlyjs=True)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.report", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--out", help="where to write the reports (default: the study directory)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def report() -> None:
        study = load_study(args.study, args.storage)
        confirm = load_confirm_study(study, args.study, args.storage)
        paths = write_reports(study, args.out or args.study, confirm)
        print(paths.table)
        print(f"wrote {paths.html}, {paths.trials_csv}, {paths.pareto_csv}")

    return run_main(report, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
