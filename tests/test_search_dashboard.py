"""search.dashboard: the objectives' names and the per-trial curve note, read back from the storage."""

from __future__ import annotations

import math

import optuna
import optuna_dashboard

from search.dashboard import curve_note, name_objectives, show_curve, sparkline


def test_sparkline_scales_between_min_and_max():
    assert sparkline([0.0, 0.25, 1.0]) == "▁▃█"  # 0.25 of 7 steps: 1.75 -> 2
    assert sparkline([0.2, 0.2]) == "▄▄"  # flat: mid-height, not a division by zero
    assert sparkline([0.1, math.nan, 0.5]) == "▁×█"
    assert sparkline([]) == ""


def test_curve_note_has_the_best_epoch_and_every_row():
    note = curve_note([0.25, 0.5, 0.3125], epochs=5)
    assert note.splitlines()[0] == "**val_top1 per epoch** (3 of 5 epochs run)"
    assert "`▁█▃` last 0.3125, best 0.5000 at epoch 2" in note
    assert [line for line in note.splitlines() if line.startswith("| ") and line[2].isdigit()] == [
        "| 1 | 0.2500 |", "| 2 | 0.5000 |", "| 3 | 0.3125 |"]
    assert curve_note([]).splitlines()[0] == "**val_top1 per epoch** (0 epochs run)"


def test_names_and_note_reach_the_storage(tmp_path):
    storage = f"sqlite:///{tmp_path / 'd.db'}"
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    name_objectives(study)
    first, second = study.ask(), study.ask()
    show_curve(first, [0.25], epochs=3)
    show_curve(first, [0.25, 0.5], epochs=3)  # rewritten at each epoch, not appended
    show_curve(second, [0.125], epochs=3)
    loaded = optuna.load_study(study_name="s", storage=storage)
    assert loaded.metric_names == ["val_top1", "gflops"]
    assert optuna_dashboard.get_note(first) == curve_note([0.25, 0.5], 3)
    assert "(2 of 3 epochs run)" in optuna_dashboard.get_note(first)
    assert "| 1 | 0.1250 |" in optuna_dashboard.get_note(second)
