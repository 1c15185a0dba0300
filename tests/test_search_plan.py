"""search.plan: the epochs and hours of a search's phases, on hand-made specs."""

import pytest

from search.plan import cost, expected_epochs, format_plan, search_plan, total_224


def test_expected_epochs_under_successive_halving():
    assert expected_epochs(30, [], 3) == 30  # no early stopping
    # all train 3 epochs, a third 6 more (to 9), a ninth 18 more (to 27), a 27th the last 3
    assert expected_epochs(30, [3, 9, 27], 3) == pytest.approx(3 + 6 / 3 + 18 / 9 + 3 / 27)
    assert expected_epochs(10, [1, 3], 3) == pytest.approx(1 + 2 / 3 + 7 / 9)


def test_the_foodx_plan_of_today():
    """64 trials of which 6 paper rows, 30 epochs, rungs 3/9/27, rf 3, 6 candidates x 3 seeds."""
    phases = search_plan(trials=64, paper_rows=6, epochs=30, image_size=224, rungs=[3, 9, 27], reduction_factor=3,
                         confirm_runs=18)
    assert [(p.name, p.runs) for p in phases] == [("paper rows", 6), ("searched trials", 58), ("confirmation", 18)]
    assert phases[0].epochs == 180 and phases[2].epochs == 540
    assert phases[1].epochs == pytest.approx(58 * (7 + 1 / 9)) and phases[1].max_epochs == 58 * 30
    assert total_224(phases) == pytest.approx(180 + 58 * (7 + 1 / 9) + 540)


def test_224_equivalents_scale_with_the_area():
    phases = search_plan(trials=2, paper_rows=0, epochs=3, image_size=112, rungs=[], reduction_factor=2,
                         confirm_runs=0)
    assert phases[1].epochs == 6 and total_224(phases) == pytest.approx(1.5)


def test_cost_and_the_table():
    phases = search_plan(trials=10, paper_rows=2, epochs=10, image_size=224, rungs=[], reduction_factor=3,
                         confirm_runs=4)
    rows = cost(phases[0], phases[0].epochs, epoch_seconds_224=360, gpus_per_trial=1, slots=8)
    assert rows.gpu_hours == pytest.approx(2.0) and rows.wall_hours == pytest.approx(0.25)
    table = format_plan(phases, epoch_seconds_224=360, gpus_per_trial=1, slots=8).splitlines()
    assert table[0].split()[-3:] == ["GPU-h", "wall", "h"]
    assert table[-1].split()[:3] == ["total", "14", "140"] and table[-1].split()[-2:] == ["14.0", "1.8"]
    assert "GPU-h" not in format_plan(phases)
