"""Confirmation end to end on the demo data at 32 px: real Ray, real Optuna, real training.

A small search whose spec has ``confirm: {top: 2, seeds: 2}`` confirms its front right
after the search; the report's means and standard errors (floored at one image's
rounding) must be those of the runs the confirm study recorded. Then ``python -m
search.confirm --seeds 4`` is killed (SIGKILL) mid-run and started again: the finished
runs are kept as they were (same number, same completion time), the one left RUNNING is
failed and run again, and every (trial, seed) pair ends with exactly one COMPLETE record.
"""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from processes import sigkill_driver_when, start_module

from fgmodel.stats import unpack_hits
from search import pareto, report, run, spec
from search.confirmed import choose_candidates, is_baseline

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NAME = "acc"


def recorded(url: str) -> dict[int, dict[int, float]]:
    """Search trial -> {seed: val top-1} of the COMPLETE confirm records, read back from storage."""
    runs: dict[int, dict[int, float]] = defaultdict(dict)
    for t in optuna.load_study(study_name=NAME + ":confirm", storage=url).get_trials(states=(TrialState.COMPLETE,)):
        runs[t.user_attrs["confirms"]][t.user_attrs["seed"]] = t.values[0]
    return dict(runs)


@pytest.fixture(scope="module")
def confirmed(small_demo_root, tmp_path_factory):
    study_dir = tmp_path_factory.mktemp("confirm")
    s = spec.load("demo").replace(image_size=32, epochs=2, trials=4, concurrency=2, grace_period=2,
                                  reduction_factor=2, data_root=str(small_demo_root), study_dir=str(study_dir),
                                  name=NAME, confirm={"top": 2, "seeds": 2},
                                  address="local")  # a fresh Ray even when `ray start` left a cluster here
    lines: list[str] = []
    outcome = run.run_search(s, log=lines.append)
    run.finish(outcome, s, "unused", log=lines.append)
    return s, outcome, f"sqlite:///{study_dir / 'optuna.db'}", lines


def test_search_then_confirm_records_every_run(confirmed):
    s, outcome, url, lines = confirmed
    assert not outcome.interrupted and outcome.confirm is not None
    study = outcome.study
    candidates = choose_candidates(study.trials, pareto.pareto_front(study), top=2)
    runs = recorded(url)
    assert set(runs) == {c.number for c in candidates} and all(sorted(r) == [1, 2] for r in runs.values())
    assert any(is_baseline(c.role) for c in candidates)  # the paper rows ran: the baseline is confirmed
    for t in outcome.confirm.get_trials():
        assert t.state == TrialState.COMPLETE and t.user_attrs["epochs_run"] == s.epochs
        assert t.user_attrs["val_top1"] == t.user_attrs["curve"][-1] == t.values[0]
        assert t.user_attrs["config"]["optim"]["seed"] == t.user_attrs["seed"]
        assert t.user_attrs["config"]["data"]["split_seed"] == s.seed  # the search's own validation split
        assert t.values[1] == study.trials[t.user_attrs["confirms"]].user_attrs["gflops"]
        hits = unpack_hits(t.user_attrs["val_hits"])  # the last epoch's, image by image
        assert len(hits) == study.user_attrs["val_images"] and hits.sum() / len(hits) == t.values[0]
    assert study.user_attrs["val_images"] == 80  # the small demo set: 20 classes x 4 of 16 train images (0.25)
    printed = "\n".join(lines).splitlines()
    assert any(line.startswith("Confirmed, ") for line in printed)  # finish printed the confirmed table


def test_report_means_and_errors_are_those_of_the_recorded_runs(confirmed):
    s, outcome, url, _ = confirmed
    runs = recorded(url)
    pareto = pd.read_csv(outcome.study_dir / "pareto.csv").set_index("number")
    (baseline,) = [n for n in runs if outcome.study.trials[n].user_attrs.get("paper_row") == "baseline"]
    for number, seeds in runs.items():
        values = [seeds[k] for k in sorted(seeds)]
        mean = sum(values) / len(values)
        se = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))
        # never below one image's rounding (1 / val_images, sd step / sqrt(12)): two seeds may tie
        se = max(se, 1 / outcome.study.user_attrs["val_images"] / math.sqrt(12) / math.sqrt(len(values)))
        row = pareto.loc[number]
        assert row["confirm_seeds"] == len(values)
        assert row["mean_top1"] == pytest.approx(mean, abs=1e-12)
        assert row["mean_top1_se"] == pytest.approx(se, abs=1e-12)
        diffs = [seeds[k] - runs[baseline][k] for k in sorted(seeds)]
        assert row["diff_vs_baseline"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-12)
    fresh = report.write_reports(outcome.study, outcome.study_dir / "again", outcome.confirm)
    assert pd.read_csv(fresh.pareto_csv).equals(pd.read_csv(outcome.study_dir / "pareto.csv"))


def far_from_done(running, finished) -> bool:
    """``running`` has had under half of the time ``finished`` took: it cannot end before the kill lands."""
    took = finished.datetime_complete - finished.datetime_start
    return datetime.datetime.now() - running.datetime_start < took / 2


def test_sigkill_then_rerun_keeps_finished_seeds(confirmed, tmp_path):
    s, outcome, url, _ = confirmed
    before = {(t.user_attrs["confirms"], t.user_attrs["seed"]): (t.number, t.datetime_complete)
              for t in outcome.confirm.get_trials(states=(TrialState.COMPLETE,))}
    log = tmp_path / "first.log"
    args = ["--study", str(outcome.study_dir), "--seeds", "4"]  # seeds 3 and 4: at least 4 runs, 2 at a time
    proc = start_module("search.confirm", args, log)

    def new_run_done_while_another_just_started() -> bool:
        trials = optuna.load_study(study_name=NAME + ":confirm", storage=url).get_trials()
        new_done = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs["seed"] > 2]
        return bool(new_done) and any(far_from_done(t, new_done[0]) for t in trials if t.state == TrialState.RUNNING)

    sigkill_driver_when(proc, new_run_done_while_another_just_started, log,
                        "no new run finished while another had just started", timeout=600)
    killed = optuna.load_study(study_name=NAME + ":confirm", storage=url).get_trials()
    orphans = {t.number for t in killed if t.state == TrialState.RUNNING}
    finished = {t.number: t.datetime_complete for t in killed if t.state == TrialState.COMPLETE}
    assert orphans

    again = subprocess.run([sys.executable, "-m", "search.confirm", *args], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "left RUNNING by a dead process" in again.stdout

    trials = optuna.load_study(study_name=NAME + ":confirm", storage=url).get_trials()
    by_number = {t.number: t for t in trials}
    for number, completed in finished.items():  # nothing finished was run again or lost
        assert by_number[number].state == TrialState.COMPLETE and by_number[number].datetime_complete == completed
    for number, completed in before.values():
        assert by_number[number].datetime_complete == completed
    assert all(by_number[n].state == TrialState.FAIL and by_number[n].user_attrs["reason"] == "driver died"
               for n in orphans)
    pairs = [(t.user_attrs["confirms"], t.user_attrs["seed"]) for t in trials if t.state == TrialState.COMPLETE]
    assert len(pairs) == len(set(pairs))  # one COMPLETE record per (trial, seed)
    assert set(pairs) == {(n, seed) for n in recorded(url) for seed in (1, 2, 3, 4)}
    assert not [t for t in trials if t.state == TrialState.RUNNING]
