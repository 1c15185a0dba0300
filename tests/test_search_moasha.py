"""MOASHA: the rung decision on hand-made results, and the scheduler driven through Ray's API."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from search.moasha import MOASHAScheduler, cost_levels, promote, rung_milestones
from search.pareto import crowding_distance, hypervolume, nondominated_fronts, rank

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP

# Four 1.0-GFLOPs trials at a rung, then a cheaper (0.8 GFLOPs), slightly less accurate one.
RUNG = [("a", 0.82, 1.0), ("b", 0.81, 1.0), ("c", 0.80, 1.0), ("d", 0.79, 1.0)]
CHEAP = ("e", 0.78, 0.8)


def _trial(**config) -> Trial:
    return Trial("__fake", config=config, stub=True)


def test_cheaper_trial_survives_where_single_objective_asha_cuts_it():
    assert promote(RUNG, CHEAP, 2)
    assert not promote(RUNG, CHEAP, 2, multi_objective=False)
    # Ray's own ASHA, fed the same rung, cuts it too.
    ray_asha = ASHAScheduler(metric="val_top1", mode="max", max_t=4, grace_period=1, reduction_factor=2)
    decisions = []
    for _, top1, gflops in [*RUNG, CHEAP]:
        trial = _trial(gflops=gflops)
        ray_asha.on_trial_add(None, trial)
        decisions.append(ray_asha.on_trial_result(None, trial, {"training_iteration": 1, "val_top1": top1}))
    assert decisions[-1] == STOP
    # And ours, driven the same way, keeps it.
    ours = MOASHAScheduler(max_t=4, grace_period=1, reduction_factor=2)
    for _, top1, gflops in [*RUNG, CHEAP]:
        trial = _trial(gflops=gflops)
        ours.on_trial_add(None, trial)
        decision = ours.on_trial_result(None, trial, {"training_iteration": 1, "val_top1": top1})
    assert decision == CONTINUE


def test_dominated_candidate_is_cut():
    # Less accurate and not cheaper than the trials there: dominated by all four.
    assert not promote(RUNG, ("e", 0.78, 1.0), 2)
    # One that is cheaper than all but below the top half of a rung full of cheaper-and-better ones.
    rung = [(i, 0.9 - 0.01 * i, 0.5) for i in range(6)]
    assert not promote(rung, ("x", 0.7, 0.6), 3)


@pytest.mark.parametrize("eta", [2, 3, 4])
@pytest.mark.parametrize("n", [1, 2, 5, 9, 13])
def test_exactly_ceil_n_over_eta_of_a_rung_go_on(n, eta):
    """Judged against the rest, exactly the top ceil(n / eta) of a rung of distinct results go on."""
    rng = random.Random(n * 10 + eta)
    points = [(f"t{i}", round(rng.uniform(0.3, 0.9), 4), round(rng.uniform(0.5, 1.0), 4)) for i in range(n)]
    for multi in (True, False):
        passed = [p for p in points if promote([q for q in points if q is not p], p, eta, multi_objective=multi)]
        assert len(passed) == math.ceil(n / eta), (multi, points)


def test_single_objective_rank_counts():
    rung = [(f"t{i}", t, 1.0) for i, t in enumerate([0.9, 0.8, 0.7, 0.6, 0.5])]  # n = 6 with the candidate
    assert promote(rung, ("c", 0.85, 1.0), 3, multi_objective=False)  # 2nd of 6, keep 2
    assert not promote(rung, ("c", 0.75, 1.0), 3, multi_objective=False)  # 3rd of 6
    assert promote(rung, ("c", 0.75, 1.0), 2, multi_objective=False)  # 3rd of 6, keep 3
    assert not promote(rung, ("c", 0.65, 1.0), 2, multi_objective=False)  # 4th
    assert promote(rung, ("c", 0.8, 1.0), 3, multi_objective=False)  # tied 2nd: ties go on
    assert not promote(rung, ("c", math.nan, 1.0), 3)
    assert promote([], ("c", 0.1, 9.0), 3)  # the first at a rung always goes on


def test_fronts():
    points = [(0.9, 5.0), (0.8, 3.0), (0.85, 5.0), (0.7, 3.0), (0.6, 1.0), (0.6, 2.0)]
    assert nondominated_fronts(points) == [[0, 1, 4], [2, 3, 5]]
    assert nondominated_fronts([]) == []


# One front of five: the ends have infinite crowding distance; inside, (0.7, 2) is the most
# isolated: (0.8 - 0.6) / 0.3 + (3.9 - 1) / 4 = 1.3917; (0.8, 3.9): 0.5 + 0.5; (0.85, 4): 0.3333 + 0.275.
FRONT = [(0.9, 5.0), (0.85, 4.0), (0.8, 3.9), (0.7, 2.0), (0.6, 1.0)]


def test_crowding_distance_and_rank():
    got = crowding_distance(FRONT)
    assert got[0] == got[4] == math.inf
    assert got[1:4] == pytest.approx([0.3333 + 0.275, 1.0, 0.6667 + 0.725], abs=1e-3)
    assert rank(FRONT) == [0, 4, 3, 2, 1]  # ends (more accurate first), then by crowding
    assert crowding_distance(FRONT[:2]) == [math.inf, math.inf]


def test_crowding_breaks_ties_in_the_last_front():
    keys = "abcde"
    results = [(k, *p) for k, p in zip(keys, FRONT, strict=True)]
    # n = 5, eta = 2: three go on; all five are on one front, so crowding decides.
    passed = {r[0] for r in results if promote([q for q in results if q is not r], r, 2)}
    assert passed == {"a", "d", "e"}  # (0.85, 4) is more accurate than (0.7, 2) but crowded


def test_rung_milestones_count_down_from_the_last_epoch():
    assert rung_milestones(2, 2, 4) == [2]
    assert rung_milestones(1, 3, 30) == [1, 3, 10]  # aligned with epoch 30, not 1, 3, 9, 27
    assert rung_milestones(3, 3, 30) == [3, 10]
    assert rung_milestones(1, 3, 10) == [1, 3]  # the paper's schedule cut at its dead tail
    assert rung_milestones(3, 3, 27) == [3, 9]
    assert rung_milestones(1, 2, 3) == [1, 2]  # the demo: 1.5 rounds up, 0.75 too
    assert rung_milestones(4, 2, 4) == []
    with pytest.raises(ValueError):
        rung_milestones(1, 1, 4)


def test_restore_rungs_then_a_new_trial_is_judged_against_them():
    curves = [(0, 1.0, [0.5, 0.6, 0.7, 0.8]), (1, 1.0, [0.4, 0.5]), (2, 1.0, [0.3])]
    fresh = MOASHAScheduler(max_t=8, grace_period=1, reduction_factor=2)
    restored = MOASHAScheduler(max_t=8, grace_period=1, reduction_factor=2)
    assert restored.restore_rungs(curves) == 3 + 2 + 1
    assert {level: len(r) for level, r in restored.rungs.items()} == {1: 3, 2: 2, 4: 1}
    assert restored.rungs[2][("restored", 0)] == (0.6, 1.0)
    weak = {"training_iteration": 1, "val_top1": 0.35}
    for sched, want in ((fresh, CONTINUE), (restored, STOP)):
        trial = _trial(gflops=1.0)
        sched.on_trial_add(None, trial)
        assert sched.on_trial_result(None, trial, weak) == want
    # 2nd of 4 at rung 1 (keep ceil(4 / 2) = 2) goes on; at rung 2 it is 3rd of 3 (keep 2): stopped.
    trial = _trial(gflops=1.0)
    restored.on_trial_add(None, trial)
    assert restored.on_trial_result(None, trial, {"training_iteration": 1, "val_top1": 0.45}) == CONTINUE
    assert restored.on_trial_result(None, trial, {"training_iteration": 2, "val_top1": 0.45}) == STOP


def test_paper_rows_always_continue_and_are_recorded():
    sched = MOASHAScheduler(max_t=4, grace_period=1, reduction_factor=2)
    strong = _trial(gflops=1.0)
    sched.on_trial_add(None, strong)
    assert sched.on_trial_result(None, strong, {"training_iteration": 1, "val_top1": 0.9}) == CONTINUE
    for config in ({"gflops": 1.0, "paper_row": "baseline"}, {"gflops": 1.0, "paper_row": "+ dropout"}):
        weak = _trial(**config)
        sched.on_trial_add(None, weak)
        for epoch in (1, 2, 3):
            assert sched.on_trial_result(None, weak, {"training_iteration": epoch, "val_top1": 0.1}) == CONTINUE
        assert sched.on_trial_result(None, weak, {"training_iteration": 4, "val_top1": 0.1}) == STOP  # done
        assert sched.rungs[1][weak.trial_id] == (0.1, 1.0)
    plain = _trial(gflops=1.0)
    sched.on_trial_add(None, plain)
    # Below the two rows' 0.1s and the 0.9 (keep 2 of 4): stopped.
    assert sched.on_trial_result(None, plain, {"training_iteration": 1, "val_top1": 0.05}) == STOP
    assert sched.num_stopped == 1


def test_scheduler_through_rays_api():
    """Six trials, two rungs (1, 2; max_t 4, eta 2), results in the order Tune would deliver them."""
    sched = MOASHAScheduler(max_t=4, grace_period=1, reduction_factor=2)
    assert sched.set_search_properties(None, None)
    assert sched.set_search_properties("val_top1", "max")
    assert not sched.set_search_properties("loss", "min")
    plan = [  # (top1 per epoch, gflops): the first two report gflops in the result, the rest in the config
        ([0.50, 0.60, 0.70, 0.75], 1.0),  # first at each rung: goes on, stopped at max_t
        ([0.40], 1.0),  # rung 1: dominated by trial 0, keep 1 of 2: stop
        ([0.45, 0.62, 0.66, 0.70], 0.6),  # rung 1: cheaper, on the front (keep 2 of 3); rung 2: dominates
        ([0.30], 1.2),  # dominated by all: stop
        ([0.55, 0.50], 1.0),  # rung 1: best; rung 2: dominated by 0.60 and 0.62 (keep 2 of 3): stop
        ([0.35, 0.58, 0.60, 0.61], 0.5),  # rung 1: 5th of 6 on top-1, but cheapest; rung 2: on the front
    ]
    trials = [_trial(number=i, **({"gflops": g} if i >= 2 else {})) for i, (_, g) in enumerate(plan)]
    for trial in trials:
        sched.on_trial_add(None, trial)
    got = []
    for trial, (curve, gflops) in zip(trials, plan, strict=True):
        for epoch, top1 in enumerate(curve, start=1):
            result = {"training_iteration": epoch, "val_top1": top1}
            if "gflops" not in trial.config:
                result["gflops"] = gflops
            decision = sched.on_trial_result(None, trial, result)
            if decision == STOP or epoch == len(curve):
                got.append((trial.config["number"], epoch, decision))
                break
    assert got == [(0, 4, STOP), (1, 1, STOP), (2, 4, STOP), (3, 1, STOP), (4, 2, STOP), (5, 4, STOP)]
    assert sched.num_stopped == 3  # trials 1, 3, 4; the others ran to max_t
    assert sorted(sched.rungs[1]) == sorted(t.trial_id for t in trials)
    assert sorted(sched.rungs[2]) == sorted(trials[i].trial_id for i in (0, 2, 4, 5))
    assert sched.rungs[2][trials[5].trial_id] == (0.58, 0.5)
    # Single-objective, trial 5 would have been cut at rung 1 (5th of 6 on top-1).
    rung1 = [(t.trial_id, *sched.rungs[1][t.trial_id]) for t in trials[:5]]
    assert not promote(rung1, (trials[5].trial_id, 0.35, 0.5), 2, multi_objective=False)
    # Tune's last result reaches on_trial_complete instead: recorded, no decision.
    late = _trial(gflops=1.0)
    sched.on_trial_add(None, late)
    sched.on_trial_complete(None, late, {"training_iteration": 2, "val_top1": 0.1})
    assert sched.rungs[2][late.trial_id] == (0.1, 1.0)
    assert "2 stopped" not in sched.debug_string() and "3 stopped" in sched.debug_string()


def test_missing_cost_is_a_clear_error():
    sched = MOASHAScheduler(max_t=4, grace_period=1, reduction_factor=2)
    trial = _trial(number=0)
    with pytest.raises(ValueError, match="'gflops'"):
        sched.on_trial_result(None, trial, {"training_iteration": 1, "val_top1": 0.5})
    single = MOASHAScheduler(max_t=4, grace_period=1, reduction_factor=2, multi_objective=False)
    assert single.on_trial_result(None, trial, {"training_iteration": 1, "val_top1": 0.5}) == CONTINUE


def test_fronts_agree_with_brute_force():
    rng = random.Random(3)
    points = [(rng.choice([0.5, 0.6, 0.7, 0.8]), rng.choice([1.0, 2.0, 3.0])) for _ in range(25)]
    fronts = nondominated_fronts(points)
    assert sorted(itertools.chain(*fronts)) == list(range(len(points)))

    def dominated_by(i, j):
        return points[j][0] >= points[i][0] and points[j][1] <= points[i][1] and points[j] != points[i]

    for level, front in enumerate(fronts):
        earlier = set(itertools.chain(*fronts[:level]))
        for i in front:
            assert not any(dominated_by(i, j) for j in front)
            if level:
                assert any(dominated_by(i, j) for j in fronts[level - 1])
            assert not any(dominated_by(i, j) for j in range(len(points)) if j not in earlier and j not in front)


def test_hypervolume_2d():
    # One point: a rectangle from its GFLOPs to the reference, from top-1 0 to its top-1.
    assert hypervolume([(0.8, 0.5)], ref_gflops=1.0) == pytest.approx(0.4)
    # Two non-dominated points: 0.6 x [0.2, 0.5) + 0.8 x [0.5, 1.0) = 0.18 + 0.4.
    assert hypervolume([(0.8, 0.5), (0.6, 0.2)], ref_gflops=1.0) == pytest.approx(0.58)
    # A dominated point adds nothing; one over the reference GFLOPs or at top-1 0 neither.
    assert hypervolume([(0.8, 0.5), (0.6, 0.2), (0.5, 0.6), (0.9, 1.2), (0.0, 0.1)], 1.0) == pytest.approx(0.58)
    assert hypervolume([(0.8, 0.5)], ref_gflops=1.0, ref_top1=0.5) == pytest.approx(0.15)
    assert hypervolume([], 1.0) == 0.0
    # Against a grid count on random fronts.
    rng = random.Random(0)
    pts = [(rng.uniform(0, 1), rng.uniform(0, 1)) for _ in range(8)]
    n = 400
    cells = sum(
        any(t >= (i + 0.5) / n and g <= (j + 0.5) / n for t, g in pts) for i in range(n) for j in range(n)
    )
    assert hypervolume(pts, 1.0) == pytest.approx(cells / n**2, abs=5e-3)


def test_cost_levels_merge_costs_within_the_tolerance_of_a_levels_cheapest():
    assert cost_levels([1.0, 1.0034, 0.56, 1.2, 1.04], 0.05) == [1.0, 1.0, 0.56, 1.2, 1.0]
    assert cost_levels([1.0, 1.0034], 0.0) == [1.0, 1.0034]


def test_cost_levels_keep_a_strong_trial_that_a_slightly_cheaper_weak_one_would_displace():
    """Five at the rung, keep 3. Exactly, the plain 0.70 (0.34% cheaper than the SCRA trials) is on the first
    front and the 0.78 SCRA trial falls behind it; by cost level, the 0.78 is second only to the 0.80."""
    others = [("scra", 0.80, 1.0034), ("plain", 0.70, 1.0), ("small", 0.30, 0.56), ("plain2", 0.60, 1.0)]
    strong = ("scra2", 0.78, 1.0034)
    assert not promote(others, strong, 2)
    assert promote(others, strong, 2, cost_tolerance=0.05)
    assert not promote(others[:1] + others[2:] + [strong], others[1], 2, cost_tolerance=0.05)
