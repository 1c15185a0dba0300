"""The report's plot (pareto.html): validation top-1 against GFLOPs, one trace per kind of trial.

Every trial with a GFLOPs figure is drawn, each kind apart, because they are not
comparable: COMPLETE trials at their top-1 (the front joined by a line, error bars of one
binomial standard error); early-stopped trials (PRUNED) at the best top-1 they reached, a
partial-training figure; over-budget trials (PRUNED before training) at top-1 = 0, having
none. On top: the paper's Table 1 rows labelled where they landed, the baseline and the
budget limit as vertical lines, and the confirmed means +- the half-width of their
Student-t interval across seeds (the level in the legend) with their own front. Failed and
unfinished trials have no point; the title counts them, and says what the confirmation
cost and what its intervals do not cover.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from search import attrs, budget
from search.confirmed import Confirmed, ConfirmedPoint
from search.report_tables import best_curve, caveats, kind, single_se, status
from search.trials import gflops_of

_TRACES = {
    # kind: (legend name, marker)
    "front": ("Pareto front (COMPLETE, within budget)", dict(symbol="circle", size=11, color="#1f77b4")),
    "complete": ("COMPLETE, dominated", dict(symbol="circle-open", size=9, color="#1f77b4")),
    "complete_over_budget": ("COMPLETE but over budget", dict(symbol="circle-x-open", size=9, color="#d62728")),
    "stopped_early": ("Stopped early (PRUNED): best top-1 before stopping",
                      dict(symbol="triangle-down-open", size=9, color="#ff7f0e")),
    "over_budget": ("Over budget (PRUNED, not trained): drawn at top-1 = 0", dict(symbol="x", size=9, color="#d62728")),
}
_COMPLETE = ("front", "complete", "complete_over_budget")


def _y(t: FrozenTrial, kind: str) -> float:
    if kind in _COMPLETE:
        return float(t.values[0])
    if kind == "stopped_early":
        best = best_curve(t)
        return 0.0 if math.isnan(best) else best
    return 0.0


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


def _error_bars(values: Sequence[float]) -> dict | None:
    """Plotly error bars of +- ``values``; None when there is none to draw."""
    if all(math.isnan(v) for v in values):
        return None
    return dict(type="data", array=[0.0 if math.isnan(v) else v for v in values], visible=True, thickness=1, width=3)


def _confirmed_hover(p: ConfirmedPoint, baseline: int | None, level: float) -> str:
    lines = [f"<b>trial {p.number}</b> confirmed ({p.role}" + (f", {p.paper_row}" if p.paper_row else "") + ")"]
    h = p.top1.halfwidth(level)
    ci = "" if math.isnan(h) else f" +- {h:.2%} ({level:.0%} t-interval)"
    lines.append(f"mean val top-1 {p.top1.mean:.2%}{ci} over {p.top1.n} seeds, {p.gflops:.3f} GFLOPs")
    lines.append("seeds: " + ", ".join(f"{seed}: {v:.2%}" for seed, v in p.runs.items()))
    d = p.vs_baseline
    if d is not None and p.number != baseline and d.n:
        h = d.halfwidth(level)
        ci = "" if math.isnan(h) else f" +- {100 * h:.2f}"
        lines.append(f"minus the baseline (trial {baseline}): {100 * d.mean:+.2f}{ci} pp over {d.n} paired seeds")
    if status(p):
        lines.append(f"diverged on seeds {', '.join(map(str, p.diverged))}: unstable, not picked"
                     if p.diverged else str(p.stopped))
    return "<br>".join(lines)


def pareto_figure(study: optuna.Study, front: Sequence[FrozenTrial], confirmed: Confirmed | None = None) -> go.Figure:
    on_front = {t.number for t in front}
    val_images = study.user_attrs.get(attrs.VAL_IMAGES)
    drawn: dict[str, list[FrozenTrial]] = {k: [] for k in _TRACES}
    undrawn: Counter = Counter()
    for t in study.get_trials(deepcopy=False):
        k = kind(t, on_front)
        if k in drawn and not math.isnan(gflops_of(t)):
            drawn[k].append(t)
        else:
            undrawn[t.state.name] += 1
    drawn["front"].sort(key=lambda t: (t.values[1], -t.values[0]))

    fig = go.Figure()
    paper = []
    for k, trials in drawn.items():
        if not trials:
            continue
        name, marker = _TRACES[k]
        ys = [_y(t, k) for t in trials]
        fig.add_trace(go.Scatter(
            x=[gflops_of(t) for t in trials], y=ys, name=name, marker=marker,
            mode="lines+markers" if k == "front" else "markers",
            error_y=_error_bars([single_se(t, val_images) for t in trials]) if k in _COMPLETE else None,
            hovertext=[_hover(t, k, y) for t, y in zip(trials, ys)],
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
        _add_confirmed(fig, confirmed)

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
        notes.append(f"error bars: single runs +- 1 binomial standard error ({val_images} validation images)"
                     + (f"; confirmed means +- their {confirmed.design.level:.0%} t-interval" if confirmed else ""))
    if confirmed:
        notes += [confirmed.verdict, confirmed.cost(), caveats(confirmed)]
        if confirmed.missing:
            notes.append(confirmed.incomplete())
    if notes:
        title += "".join(f"<br><sub>{note}</sub>" for note in notes)
    fig.update_layout(title=title, xaxis_title="GFLOPs per image", yaxis_title="validation top-1",
                      yaxis_tickformat=".0%", template="plotly_white", hovermode="closest",
                      legend=dict(orientation="h", y=-0.18))
    return fig


def _add_confirmed(fig: go.Figure, confirmed: Confirmed) -> None:
    """The confirmed means +- their t-interval across seeds, and the front of the means as a dashed line."""
    level = confirmed.design.level
    points = sorted(confirmed.points.values(), key=lambda p: (p.gflops, -p.top1.mean, p.number))
    fig.add_trace(go.Scatter(
        x=[p.gflops for p in points], y=[p.top1.mean for p in points], mode="markers",
        name=f"Confirmed: mean +- {level:.0%} t-interval over up to {confirmed.max_seeds} new seeds",
        marker=dict(symbol="diamond", size=12, color="#9467bd"),
        error_y=_error_bars([p.top1.halfwidth(level) for p in points]),
        hovertext=[_confirmed_hover(p, confirmed.baseline, level) for p in points], hoverinfo="text",
    ))
    mean_front = [confirmed.points[n] for n in confirmed.front]
    fig.add_trace(go.Scatter(
        x=[p.gflops for p in mean_front], y=[p.top1.mean for p in mean_front], mode="lines",
        name="Front on the confirmed means", line=dict(color="#9467bd", dash="dash"), hoverinfo="skip",
    ))
