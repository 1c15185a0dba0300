"""search.plan: the epochs and hours of a search's phases, on hand-made specs."""

import pytest

from search.plan import (
    Plan,
    confirm_runs,
    cost,
    dead_tail,
    describe,
    expected_epochs,
    format_plan,
    plan_for,
    rung_ladder,
    search_plan,
    total_224,
)


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


def test_the_rung_ladder_counts_down_from_the_last_epoch():
    assert rung_ladder(1, 3, 10) == [1, 3]  # 10 / 3 = 3.3, 10 / 9 = 1.1
    assert rung_ladder(3, 3, 30) == [3, 10]
    assert rung_ladder(2, 2, 10) == [3, 5]  # 2.5 rounds up; 1.25 is below the grace period
    assert rung_ladder(1, 2, 3) == [1, 2]
    assert rung_ladder(5, 3, 10) == []  # every rung below the grace period
    assert rung_ladder(1, 3, 1) == []
    with pytest.raises(ValueError):
        rung_ladder(0, 3, 10)


def test_dead_tail_says_from_which_epoch():
    assert dead_tail(30, 10, 0.01) == "schedule dead: lr <= 1% of its first value from epoch 11 of 30"
    assert dead_tail(30, 15, 0.001) == "schedule dead: lr <= 0.1% of its first value from epoch 16 of 30"
    assert dead_tail(30, 30, 0.01) is None and dead_tail(30, 10, None) is None


def test_confirm_runs_count_every_candidate_at_its_most_seeds():
    assert confirm_runs(None, paper=True, top=4, seeds=3) == 0
    # top 4, the knee, the baseline and the best paper row, 3 seeds each
    assert confirm_runs({}, paper=True, top=4, seeds=3) == 21
    assert confirm_runs({"top": 2, "seeds": 2, "race": True}, paper=False, top=4, seeds=3) == 6


def _today_224() -> float:
    """The shipped foodx search before issue 19: 30 epochs, rungs 3/9/27, 6 rows, 6 candidates x 3 seeds."""
    return total_224(search_plan(trials=64, paper_rows=6, epochs=30, image_size=224, rungs=[3, 9, 27],
                                 reduction_factor=3, confirm_runs=18))


def test_the_shipped_foodx_plan_is_at_most_40_percent_of_todays():
    from search import spec as spec_mod
    from search.confirmed import DEFAULT_SEEDS, DEFAULT_TOP

    s = spec_mod.load("foodx")
    plan = plan_for(s, trained=s.trained_epochs(), paper_rows=6, slots=8, top=DEFAULT_TOP, seeds=DEFAULT_SEEDS)
    assert s.trials == 64 and plan.phases[1].runs == 58
    assert total_224(plan.phases) <= 0.4 * _today_224()


def test_describe_shows_the_cut_the_rungs_and_the_hours():
    phases = search_plan(trials=10, paper_rows=2, epochs=10, image_size=224, rungs=[1, 3], reduction_factor=3,
                         confirm_runs=4)
    plan = Plan(phases, epochs=30, trained=10, rungs=[1, 3], reduction_factor=3, gpus_per_trial=1, slots=8,
                dead=dead_tail(30, 10, 0.01))
    text = describe(plan, epoch_seconds_224=360).splitlines()
    assert text[0] == ("plan: a complete trial trains 10 of 30 epochs (schedule dead: lr <= 1% of its first value "
                       "from epoch 11 of 30); rungs at epochs 1, 3, 1/3 going on; 8 at a time")
    assert text[1].split()[-3:] == ["GPU-h", "wall", "h"]
    unknown = describe(Plan(phases, 10, 10, [], 3, 1, None), epoch_seconds_224=360)
    assert "slots unknown here" in unknown and "GPU-h" in unknown and "wall h" not in unknown
    assert "--epoch-seconds" in describe(plan)
