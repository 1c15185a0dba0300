"""search.ledger: the compute per phase of hand-made trials, against the plan stored on the study."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from search import attrs
from search.ledger import format_ledger, ledger, phase_of, planned, spent


def _trial(epochs: int, seconds: float, size: int = 224, **extra) -> optuna.trial.FrozenTrial:
    user = {attrs.EPOCHS_RUN: epochs, attrs.TRAIN_SECONDS: seconds,
            attrs.CONFIG: {"data": {"image_size": size}}, **extra}
    return optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs=user)


TRIALS = [
    _trial(10, 1000.0, phase="paper rows", paper_row="baseline"),
    _trial(10, 900.0, 112, phase="searched trials"),  # a quarter of the pixels: 2.5 224-px epochs
    _trial(1, 100.0, phase="searched trials"),
    _trial(0, 0.0, over_budget=True, phase="searched trials"),  # never trained: not a run
    _trial(3, 250.0, paper_row="+ augmentation"),  # recorded before the phase attr: by its paper row
]
RECORDS = [_trial(10, 1000.0), _trial(4, 400.0)]  # the confirm study's: a FAIL costs as much


def test_phase_of_reads_the_attr_else_the_paper_row():
    assert [phase_of(t) for t in TRIALS] == ["paper rows", "searched trials", "searched trials", "searched trials",
                                             "paper rows"]


def test_spent_counts_the_runs_their_224_px_epochs_and_seconds():
    rows = {r.phase: r for r in spent(TRIALS, RECORDS)}
    assert (rows["paper rows"].runs, rows["paper rows"].epochs_224, rows["paper rows"].train_seconds) == (2, 13, 1250)
    assert rows["searched trials"].runs == 2 and rows["searched trials"].epochs_224 == pytest.approx(3.5)
    assert (rows["confirmation"].runs, rows["confirmation"].epochs_224) == (2, 14)


def test_planned_from_the_stored_spec():
    spec = {"trials": 10, "image_size": 224, "scheduler": "moasha", "grace_period": 1, "reduction_factor": 3,
            "confirm": {"top": 1, "seeds": 2}}
    plan = planned(spec, trained=10, paper_rows=2)
    assert plan["paper rows"] == 20 and plan["searched trials"] == pytest.approx(8 * (1 + 2 / 3 + 7 / 9))
    assert plan["confirmation"] == (1 + 1 + 2) * 2 * 10
    assert planned({**spec, "scheduler": "fifo", "confirm": None}, 10, 0) == {
        "paper rows": 0, "searched trials": 100, "confirmation": 0}


def test_the_table_and_the_share():
    lines = format_ledger(spent(TRIALS, RECORDS), {"paper rows": 20, "searched trials": 30, "confirmation": 40})
    assert lines.splitlines()[1].split() == ["phase", "runs", "planned", "spent", "train", "h", "share"]
    assert lines.splitlines()[2].split() == ["paper", "rows", "2", "20", "13", "0.35", "34%"]
    assert lines.splitlines()[-1].split() == ["total", "6", "90", "30", "1.01", "100%"]  # 30.5 epochs
    no_plan = format_ledger(spent([], [])).splitlines()
    assert no_plan[-1].split() == ["total", "0", "0", "0.00"]


def test_ledger_of_a_study_against_its_stored_spec():
    assert ledger(TRIALS, RECORDS, {}).splitlines()[-1].split() == ["total", "6", "30", "1.01", "100%"]
    stored = {attrs.SPEC: {"trials": 5, "epochs": 30, "confirm": None}, attrs.TRAINED_EPOCHS: 10}
    # 2 paper rows x 10 epochs, 3 searched trials under rungs 1 and 3 of 10 (the defaults: grace 1, eta 3)
    total = ledger(TRIALS, RECORDS, stored).splitlines()[-1].split()
    assert total[:3] == ["total", "6", f"{20 + 3 * (1 + 2 / 3 + 7 / 9):.0f}"]
