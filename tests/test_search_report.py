"""Reports on the hand-made paper-shaped study (tests/hand_made.py): the front, the CSVs, the HTML, the CLI."""

from __future__ import annotations

import math

import optuna
import pandas as pd
import pytest
from hand_made import F, P, Row, add_record, add_runs, confirm_paper_study, paper_study, search_study, set_design

from search import confirmed, pareto, report, report_figure
from search.studydir import StudyPointer, default_storage, open_confirm_study, write_pointer

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_front_is_optunas_selection_under_the_budget():
    study = paper_study()
    assert [t.number for t in pareto.pareto_front(study)] == [2, 4, 5]


def test_csvs_hold_every_trial_and_the_front(tmp_path):
    paths = report.write_reports(paper_study(), tmp_path)
    trials = pd.read_csv(paths.trials_csv)
    assert list(trials["number"]) == list(range(11))
    assert list(trials["state"]) == ["COMPLETE"] * 7 + ["PRUNED", "PRUNED", "FAIL", "COMPLETE"]
    by = trials.set_index("number")
    assert list(by.index[by["on_front"]]) == [2, 4, 5]
    assert by.loc[6, "kind"] == "complete_over_budget" and by.loc[6, "val_top1"] == 0.70
    assert by.loc[7, "kind"] == "over_budget" and by.loc[7, "gflops"] == 0.12 and math.isnan(by.loc[7, "val_top1"])
    assert by.loc[7, "budget_excess"] == pytest.approx(0.015)
    assert by.loc[8, "kind"] == "stopped_early" and by.loc[8, "best_val_top1"] == 0.35 and by.loc[8, "epochs_run"] == 2
    assert by.loc[9, "error"] == "RuntimeError: boom"
    assert by.loc[4, "paper_row"] == "+ SCRA" and by.loc[4, "scra_stages"] == "[0]"
    assert by.loc[4, "vs_baseline"] == pytest.approx(0.003)
    assert by.loc[5, "params_scra_kernel"] == 3 and by.loc[5, "params_scra_after_1"]
    assert by.loc[2, "params_l2sp_lambda"] == 0.01 and by.loc[2, "model_params"] == 3_400_000

    front_csv = pd.read_csv(paths.pareto_csv)
    assert list(front_csv["number"]) == [2, 4, 5]  # cheapest first
    assert list(front_csv["val_top1"]) == [0.50, 0.56, 0.60]
    assert list(front_csv["pick"].fillna("")) == ["", "knee", "max-acc"]


def test_console_table(tmp_path):
    table = report.write_reports(paper_study(), tmp_path).table
    lines = table.splitlines()
    assert lines[0] == ("Pareto front, 3 of 11 trials (8 COMPLETE, 1 FAIL, 2 PRUNED), single runs; "
                        "se: binomial, 400 validation images:")
    assert lines[1].split()[:6] == ["trial", "val_top1", "se", "gflops", "vs_baseline", "pick"]
    # se = sqrt(0.56 * 0.44 / 400) = 2.48%
    assert lines[3].split()[:7] == ["4", "56.00%", "2.48%", "0.1003", "+0.30%", "knee", "+"]
    assert "+ SCRA" in lines[3] and "max-acc" in lines[4]


def test_html_draws_each_kind_apart(tmp_path):
    html = report.write_reports(paper_study(), tmp_path).html.read_text()
    for text in ("Pareto front (COMPLETE, within budget)", "COMPLETE, dominated", "COMPLETE but over budget",
                 "Stopped early (PRUNED)", "Over budget (PRUNED, not trained): drawn at top-1 = 0",
                 "Paper Table 1 rows", "+ augmentation", "+ SCRA", "budget +5%: 0.105 GFLOPs",
                 "not drawn: 1 FAIL", "reason: stopped early by ASHA at epoch 2", "scra_kernel = 3"):
        assert text in html, text


def test_front_trace_is_joined_cheapest_first():
    front = pareto.pareto_front(paper_study())
    fig = report_figure.pareto_figure(paper_study(), front)
    (trace,) = [t for t in fig.data if t.name.startswith("Pareto front")]
    assert trace.mode == "lines+markers"
    assert list(trace.x) == [0.1, 0.1003, 0.103] and list(trace.y) == [0.5, 0.56, 0.6]
    (over,) = [t for t in fig.data if t.name.startswith("Over budget")]
    assert list(over.x) == [0.12] and list(over.y) == [0.0]
    assert over.hovertext[0].startswith(
        "<b>trial 7</b> PRUNED<br>not trained (over budget), 0.120 GFLOPs, 0 epochs<br>")
    assert "reason: over budget: 0.12 GFLOPs > limit 0.105" in over.hovertext[0]
    assert "scra_after_3 = True" in over.hovertext[0]
    (stopped,) = [t for t in fig.data if t.name.startswith("Stopped early")]
    assert list(stopped.y) == [0.35]
    (paper,) = [t for t in fig.data if t.name == "Paper Table 1 rows"]
    assert list(paper.text) == ["+ L2SP", "+ SCRA", "baseline", "+ augmentation", "+ dropout"]


@pytest.mark.parametrize("with_trials", [True, False])
def test_no_complete_trials_still_writes_everything(tmp_path, with_trials):
    design = [Row(P, None, 0.12, attrs={"epochs_run": 0, "curve": [], "reason": "over budget"}),
              Row(F, attrs={"error": "RuntimeError: boom"})] if with_trials else []
    paths = report.write_reports(search_study(0.1, 0.05, design), tmp_path / "new")
    assert paths.table == (f"No COMPLETE trial within the budget yet, so no Pareto front "
                           f"({'2 trials: 1 FAIL, 1 PRUNED' if with_trials else '0 trials: none'}).")
    assert len(pd.read_csv(paths.trials_csv)) == (2 if with_trials else 0)
    assert len(pd.read_csv(paths.pareto_csv)) == 0
    assert "no COMPLETE trial within the budget yet" in paths.html.read_text()


def test_cli_on_a_sqlite_study(tmp_path, capsys):
    storage = default_storage(tmp_path)
    paper_study(storage=storage, name="demo-cli")
    write_pointer(tmp_path, StudyPointer(storage, "demo-cli"))
    report.main(["--study", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith("Pareto front, 3 of 11 trials") and "pareto.html" in out
    assert (tmp_path / "trials.csv").exists() and (tmp_path / "pareto.html").exists()


def test_cli_without_a_study_exits_2_with_one_line(tmp_path, capsys):
    assert report.main(["--study", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "missing" in err


def test_confirmed_points_in_the_csvs_table_and_html(tmp_path):
    storage = optuna.storages.InMemoryStorage()
    study = paper_study(storage=storage)
    confirm = confirm_paper_study(study, storage)
    paths = report.write_reports(study, tmp_path, confirm)

    front_csv = pd.read_csv(paths.pareto_csv)
    assert list(front_csv["number"]) == [0, 2, 4, 5]  # the front (2, 4, 5) and the confirmed (0, 4, 5), cheapest first
    assert list(front_csv["pick"].fillna("")) == ["", "", "max-acc, knee", ""]  # on the means: 4 beats 5
    assert list(front_csv["confirm_seeds"]) == [3, 0, 3, 3]
    assert front_csv["mean_top1"].tolist()[2:] == pytest.approx([0.55, 0.52]) and math.isnan(front_csv["mean_top1"][1])
    assert front_csv["mean_top1_se"][3] == pytest.approx(0.02 / math.sqrt(3))
    assert front_csv["mean_top1_ci"][3] == pytest.approx(4.302653 * 0.02 / math.sqrt(3))  # t(2), 95 %
    assert front_csv["diff_vs_baseline"].tolist()[2:] == pytest.approx([0.05, 0.02])  # paired, same seeds
    # the block design's se (test_search_confirmed): 0.0047 on 4 df, t(4) = 2.776
    assert front_csv["diff_vs_baseline_se"][2] == pytest.approx(0.0047140452)
    assert front_csv["diff_vs_baseline_ci"][2] == pytest.approx(2.776445 * 0.0047140452)
    assert front_csv["diverged_seeds"].isna().all() and front_csv["race_stop"].isna().all()
    assert list(front_csv["on_mean_front"]) == [True, False, True, False]
    trials = pd.read_csv(paths.trials_csv).set_index("number")
    assert trials.loc[5, "val_top1_se"] == pytest.approx(math.sqrt(0.6 * 0.4 / 400))
    assert trials.loc[5, "mean_top1"] == pytest.approx(0.52) and trials.loc[3, "confirm_seeds"] == 0

    lines = paths.table.splitlines()
    assert "pick" not in lines[1].split()  # the single-run front's picks give way to the means'
    start = next(i for i, line in enumerate(lines) if line.startswith("Confirmed, 3 trials"))
    assert "half-width of its 95% t-interval" in lines[start]
    assert lines[start + 1].split()[:7] == ["trial", "role", "seeds", "mean_top1", "ci", "vs_baseline_pp", "ci_pp"]
    assert lines[start + 3].split() == ["4", "front", "3", "55.00%", "+-4.97%", "+5.00", "+-1.31", "0.1003", "yes",
                                        "max-acc,", "knee"]
    assert lines[start + 5].startswith("Trial 4 (best mean, 55.00%) is ahead of trial 5")
    assert lines[start + 6] == "Fixed design: 9 of 9 runs trained (3 candidates x 3 seeds)."
    assert lines[-1].startswith("Intervals: 95% Student-t") and "winner's curse remains" in lines[-1]
    assert "Holm-corrected over the candidates compared" in lines[-1]

    fig = report_figure.pareto_figure(study, pareto.pareto_front(study), confirmed.summarize(study, confirm))
    (means,) = [t for t in fig.data if t.name.startswith("Confirmed: mean +- 95% t-interval")]
    assert list(means.x) == [0.1, 0.1003, 0.103] and list(means.y) == pytest.approx([0.50, 0.55, 0.52])
    t2 = 4.302653  # Student's t, 2 degrees of freedom, 95 %
    assert list(means.error_y.array) == pytest.approx([t2 * 0.01 / math.sqrt(3), t2 * 0.02 / math.sqrt(3),
                                                       t2 * 0.02 / math.sqrt(3)])
    (mean_front,) = [t for t in fig.data if t.name == "Front on the confirmed means"]
    assert list(mean_front.x) == [0.1, 0.1003]
    (front,) = [t for t in fig.data if t.name.startswith("Pareto front")]
    assert list(front.error_y.array) == pytest.approx([math.sqrt(a * (1 - a) / 400) for a in (0.5, 0.56, 0.6)])
    html = paths.html.read_text()
    assert "4 minus the baseline (trial 0) is +5.00 pp (95% t-interval +3.69 to +6.31)" in html
    assert "Fixed design: 9 of 9 runs trained" in html and "winner's curse remains" in html


def test_cli_reads_the_confirm_study(tmp_path, capsys):
    storage = default_storage(tmp_path)
    study = paper_study(storage=storage, name="demo")
    confirm_paper_study(study, storage)
    write_pointer(tmp_path, StudyPointer(storage, "demo"))
    assert report.main(["--study", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Confirmed, 3 trials" in out and "Trial 4 (best mean, 55.00%)" in out


def test_a_race_shows_its_stops_and_its_cost(tmp_path):
    storage = optuna.storages.InMemoryStorage()
    study = paper_study(storage=storage)
    confirm = open_confirm_study(study, storage)
    set_design(confirm, top=2, seeds=3, race=True)  # candidates 5 (0.103 GFLOPs), 4 (0.1003), 0 (0.1, baseline)
    # after round 2, 4 - 5 = +9.50 pp on a pooled se of 0.54 pp (2 df, see test_search_racing): 5 stops;
    # the baseline, cheaper than 4, is not dominated: 4 and 0 get seed 3, and the race is over
    add_runs(confirm, 5, "front", 0.1030, {1: 0.50, 2: 0.52})
    add_runs(confirm, 4, "front", 0.1003, {1: 0.60, 2: 0.61, 3: 0.62})
    add_runs(confirm, 0, "baseline", 0.1000, {1: 0.55, 2: 0.555, 3: 0.56})
    got = confirmed.summarize(study, confirm)
    assert [r.seed for r in got.rounds] == [1, 2, 3] and got.missing == [] and got.trained == 8
    assert got.points[5].stopped.startswith("stopped after round 2: trial 4, no costlier, is ahead by +9.50 pp")
    lines = report.write_reports(study, tmp_path, confirm).table.splitlines()
    row = next(line for line in lines if line.split()[:2] == ["5", "front"])
    assert row.split()[-2:] == ["stopped", "r2"]
    cost = next(line for line in lines if line.startswith("Racing"))
    assert cost.startswith("Racing (at most 3 seeds, 95% t-intervals): 3 rounds, 8 runs trained against 9 for "
                           "the fixed design (3 candidates x 3 seeds): 1 saved. Stopped: trial 5 (stopped after "
                           "round 2: trial 4, no costlier, is ahead by +9.50 pp")
    add_record(confirm, 0, 4, F, gflops=0.1, role="baseline", status="non_finite")
    lines = report.write_reports(study, tmp_path, confirm).table.splitlines()
    assert next(line for line in lines if line.split()[:2] == ["0", "baseline"]).split()[-2:] == ["diverged", "4"]
    assert "Trial 0 diverged on seed 4 (3 of 4 runs finished): unstable" in "\n".join(lines)
