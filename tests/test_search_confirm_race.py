"""search.confirm's rounds without Ray: `_train` replaced by a fake that records hand-made runs as Ray's would.

The paper-shaped study (tests/hand_made.py) raced with ``confirm: {top: 2, seeds: 3, race: true}``:
candidates 5 (0.103 GFLOPs), 4 (0.1003, the knee) and the baseline 0 (0.1). After round 2,
4 - 5 = +9.50 pp on a pooled se of 0.54 pp (test_search_racing): 5 stops; the baseline is
cheaper than 4, so not dominated, but 4 leads it by 5.25 pp: a third seed would change no
pick, and the race is over (six runs instead of nine; eight without curtailment).
"""

from __future__ import annotations

import re

import numpy as np
import optuna
import pytest
from hand_made import BASELINE, BUDGET, PAPER_ATTRS, paper_study, ran, search_study
from optuna.trial import TrialState

from fgmodel.stats import pack_hits
from search import confirm, confirmed, report_tables, spec
from search.confirmed import Run
from search.studydir import default_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

TOP1 = {5: {1: 0.50, 2: 0.52, 3: 0.51}, 4: {1: 0.60, 2: 0.61, 3: 0.62}, 0: {1: 0.55, 2: 0.555, 3: 0.56}}
VAL_IMAGES = PAPER_ATTRS["val_images"]
SPEC = spec.load("demo").replace(epochs=1, confirm={"top": 2, "seeds": 3, "race": True})


class FakeRay:
    """Trains every run of a round as one Ray call would report it; ``interrupt_at`` / ``raise_at``: the
    run at which Ctrl-C lands (the run stays in flight) or the trainable raises."""

    def __init__(self, interrupt_at: Run | None = None, raise_at: Run | None = None,
                 top1: dict[int, dict[int, float]] = TOP1) -> None:
        self.calls: list[list[Run]] = []
        self.interrupt_at, self.raise_at, self.top1 = interrupt_at, raise_at, top1

    def __call__(self, spec, runs, recorder, study_dir, trainable, verbose) -> None:
        self.calls.append(list(runs))
        for r in runs:
            key = f"{r.confirms}-{r.seed}"
            recorder.start(key, r)
            assert recorder.configs[(r.confirms, r.seed)]["data"]["split_seed"] == 0  # the trials' own split
            if r == self.interrupt_at:
                raise KeyboardInterrupt
            if r == self.raise_at:
                recorder.result(key, {"error": "RuntimeError: boom"})
                recorder.complete(key, errored=True)
                continue
            top1 = self.top1[r.confirms][r.seed]
            hits = pack_hits(np.arange(VAL_IMAGES) < round(top1 * VAL_IMAGES))  # the first images right
            for epoch in range(1, recorder.epochs + 1):  # the last epoch's top-1 is the run's
                recorder.result(key, {"epoch": epoch, "val_top1": top1, "val_hits": hits})
            recorder.complete(key)


def race(monkeypatch, study, storage, fake, **design):
    monkeypatch.setattr(confirm, "_train", fake)
    lines: list[str] = []
    outcome = confirm.run_confirm(study, storage, "unused", spec=SPEC, log=lines.append, **design)
    return outcome, lines


def pairs(conf) -> list[tuple[int, int]]:
    return sorted((t.user_attrs["confirms"], t.user_attrs["seed"]) for t in conf.get_trials()
                  if t.state == TrialState.COMPLETE)


def test_rounds_stop_the_dominated_candidate_and_curtailment_ends_the_race(tmp_path, monkeypatch):
    storage = default_storage(tmp_path)
    study = paper_study(storage=storage)
    fake = FakeRay()
    outcome, lines = race(monkeypatch, study, storage, fake)
    assert fake.calls == [[Run(5, 1), Run(4, 1), Run(0, 1)], [Run(5, 2), Run(4, 2), Run(0, 2)]]  # a Ray call a round
    assert not outcome.interrupted and outcome.state.over and outcome.state.alive == [4, 0]
    assert outcome.confirm.user_attrs["design"] == {"top": 2, "seeds": 3, "race": True, "seed": 0, "level": 0.95,
                                                    "futility": 0.15}
    text = "\n".join(lines)
    assert "racing, at most 3 seeds (1, 2, 3)" in lines[0]
    assert "confirm: round 2 (seed 2) done: trials 5, 4, 0; stop trial 5: trial 4, no costlier, is ahead by " \
           "+9.50 pp" in text
    # 4 leads the cheaper baseline by 5.25 pp: a third seed would change neither pick
    assert re.search(r"confirm: the race is over after round 2: trials 4, 0 remain \(with every seed run, the fixed "
                     r"design would pick what the race picks now in 99\.\d% of the simulated completions\)", text)
    assert lines[-1].startswith("confirm: Racing (at most 3 seeds, 95% t-intervals, curtailed at 15%): 2 rounds, 6 "
                                "runs trained against 9 for the fixed design (3 candidates x 3 seeds): 3 saved. "
                                "Stopped: trial 5")
    got = confirmed.summarize(study, outcome.confirm)  # what the report and the export recompute
    assert got.picks == {"max-acc": 4, "knee": 4} and got.points[5].runs == {1: 0.50, 2: 0.52} and not got.missing
    # the runs' per-image hits: 4 - baseline over seeds 1, 2 is +5.25 pp, its images' bootstrap interval above 0
    mean, low, high = got.points[4].vs_baseline_images
    assert mean == pytest.approx(0.0525) and 0 < low < mean < high and got.points[0].vs_baseline_images is None
    table = report_tables.confirmed_table(got).set_index("trial")
    assert table.loc[4, "images_ci_pp"] == f"[{100 * low:+.2f}, {100 * high:+.2f}]"
    assert "paired bootstrap over the validation images and the seeds" in report_tables.caveats(got)


def test_without_curtailment_the_finalists_run_every_seed(tmp_path, monkeypatch):
    storage = default_storage(tmp_path)
    study = paper_study(storage=storage)
    fake = FakeRay()
    outcome, lines = race(monkeypatch, study, storage, fake, futility=0.0)
    assert fake.calls[2:] == [[Run(4, 3), Run(0, 3)]] and outcome.state.over
    assert lines[-1].startswith("confirm: Racing (at most 3 seeds, 95% t-intervals): 3 rounds, 8 runs trained "
                                "against 9 for the fixed design (3 candidates x 3 seeds): 1 saved. Stopped: trial 5")
    assert confirmed.summarize(study, outcome.confirm).design.futility == 0.0  # the report recomputes this race


def test_the_searchs_own_runs_let_round_one_stop_a_candidate(tmp_path, monkeypatch):
    # 1 (0.62) dominates 2 (0.50, next best) and the baseline 0 in the search, each trained all 4 epochs
    # (trained_epochs 4): their own runs join round 1's noise estimate. Round 1 is close to them (seed 1 - own =
    # -0.01, -0.01, +0.01: sd 0.0082 on 2 df), so 2, 12 pp below 1 (+- 4.97), stops at once; 1 and the baseline
    # get seed 2 and the race is over: 5 runs against the fixed design's 9.
    storage = default_storage(tmp_path)
    design = [ran(0.40, 0.1000, "baseline"), ran(0.62, 0.1000), ran(0.50, 0.1003)]
    study = search_study(BASELINE, BUDGET, design, storage, "demo", **PAPER_ATTRS, trained_epochs=4)
    fake = FakeRay(top1={1: {1: 0.61, 2: 0.62}, 2: {1: 0.49}, 0: {1: 0.41, 2: 0.40}})
    outcome, lines = race(monkeypatch, study, storage, fake)
    assert fake.calls == [[Run(1, 1), Run(2, 1), Run(0, 1)], [Run(1, 2), Run(0, 2)]]
    assert "confirm: round 1 (seed 1) done: trials 1, 2, 0; stop trial 2: trial 1, no costlier, is ahead by " \
           "+12.00 pp" in "\n".join(lines)
    assert "5 runs trained against 9 for the fixed design" in lines[-1]
    assert confirmed.summarize(study, outcome.confirm).points[2].stopped.startswith("stopped after round 1")
    assert confirmed.own_runs(study.trials, outcome.candidates, 4) == {1: 0.62, 2: 0.50, 0: 0.40}
    assert confirmed.own_runs(study.trials, outcome.candidates, 8) == {}  # cut short of a confirmation run's epochs


def test_an_interrupted_race_resumes_where_it_stopped(tmp_path, monkeypatch):
    storage = default_storage(tmp_path)
    study = paper_study(storage=storage)
    outcome, _ = race(monkeypatch, study, storage, FakeRay(interrupt_at=Run(4, 2)))
    assert outcome.interrupted and outcome.state.todo == [Run(4, 2), Run(0, 2)]
    assert pairs(outcome.confirm) == [(0, 1), (4, 1), (5, 1), (5, 2)]
    assert confirmed.summarize(study, outcome.confirm).missing == [Run(4, 2), Run(0, 2)]  # export refuses
    fake = FakeRay()
    outcome, _ = race(monkeypatch, study, storage, fake)
    assert fake.calls == [[Run(4, 2), Run(0, 2)]]  # the same rounds and stops as in one go
    assert pairs(outcome.confirm) == [(0, 1), (0, 2), (4, 1), (4, 2), (5, 1), (5, 2)]
    assert [t.user_attrs["reason"] for t in outcome.confirm.get_trials() if t.state == TrialState.FAIL] == [
        "interrupted"]


def test_a_run_that_raises_ends_this_command_and_the_next_retries_it(tmp_path, monkeypatch):
    storage = default_storage(tmp_path)
    study = paper_study(storage=storage)
    fake = FakeRay(raise_at=Run(0, 1))
    outcome, lines = race(monkeypatch, study, storage, fake)
    assert len(fake.calls) == 1 and outcome.state.todo == [Run(0, 1)] and not outcome.interrupted
    assert "confirm: runs of trials 0 failed; run the command again to retry them" in lines
    outcome, _ = race(monkeypatch, study, storage, FakeRay())
    assert outcome.state.over and len(pairs(outcome.confirm)) == 6


def test_the_fixed_design_is_one_call(tmp_path, monkeypatch):
    storage = default_storage(tmp_path)
    study = paper_study(storage=storage)
    fake = FakeRay()
    monkeypatch.setattr(confirm, "_train", fake)
    lines: list[str] = []
    confirm.run_confirm(study, storage, "unused", spec=SPEC, race=False, log=lines.append)
    assert len(fake.calls) == 1 and len(fake.calls[0]) == 9
    assert lines[-1] == "confirm: Fixed design: 9 of 9 runs trained (3 candidates x 3 seeds)."


@pytest.mark.parametrize("flag", [["--race"], ["--no-race"]])
def test_cli_takes_the_race_flag(flag):
    with pytest.raises(SystemExit) as help_exit:
        confirm.main([*flag, "--help"])
    assert help_exit.value.code == 0
