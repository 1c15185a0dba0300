"""search.racing on hand-made runs: rounds, stops, the baseline kept, and decisions that later records cannot change."""

from __future__ import annotations

import re

import numpy as np

from search import racing, stats
from search.racing import Entrant, Run

SEEDS = [1, 2, 3]
# Two seeds of A, B and the baseline C, all at 0.1 GFLOPs. The block design's residuals are
# +-0.00083 (A), +-0.00417 (B), +-0.00333 (C): RSS 5.83e-5 on 2 df, sd 0.0054, and a difference
# of two means has se 0.0054 too; t(2) = 4.303, so +-2.32 pp. A - B = +9.50 pp: B is clearly
# below A; A - C = +5.25 pp: so is the baseline, which stays while another candidate races.
RUNS = {1: {1: 0.60, 2: 0.61}, 2: {1: 0.50, 2: 0.52}, 0: {1: 0.55, 2: 0.555}}
SAME_COST = [Entrant(1, 0.1), Entrant(2, 0.1), Entrant(0, 0.1, baseline=True)]


def test_round_one_decides_nothing():
    first = {n: {1: runs[1]} for n, runs in RUNS.items()}
    state = racing.race(SAME_COST, SEEDS, first, {})
    assert [r.seed for r in state.rounds] == [1] and not state.stops
    assert state.todo == [Run(1, 2), Run(2, 2), Run(0, 2)]  # one seed each: no noise to judge by yet


def test_clearly_below_stops_and_the_race_ends_with_one_undecided():
    state = racing.race(SAME_COST, SEEDS, RUNS, {}, step=1 / 400)
    assert state.over and state.todo == [] and state.alive == [1, 0]
    (stop,) = state.rounds[1].stopped
    assert (stop.number, stop.round) == (2, 2)
    assert stop.reason == ("trial 1, no costlier, is ahead by +9.50 pp (95% t-interval +7.18 to +11.82, "
                           "seed noise pooled, 2 df)")
    assert 0 not in state.stops  # the baseline, itself clearly below trial 1, is never stopped for it


CHEAP_B = [Entrant(1, 0.2), Entrant(2, 0.05), Entrant(0, 0.1, baseline=True)]  # B now the cheapest


def test_a_cheaper_candidate_is_not_stopped_by_a_costlier_one():
    state = racing.race(CHEAP_B, SEEDS, RUNS, {}, futility=0)  # no curtailment: the dominated rule alone
    assert not state.stops and state.todo == [Run(1, 3), Run(2, 3), Run(0, 3)]


def test_curtailment_stops_what_cannot_become_a_pick_and_ends_the_race():
    # B (51.0%, the cheapest) is on the front, but the knee of B, C (55.25%) and A (60.5%) is C: the chord from B
    # to A passes below C by far more than a third seed can move anyone. With every seed run, the fixed design
    # picks B in under 1% of the simulated completions (2 degrees of freedom: heavy tails), and A, C as now in
    # about 97%: B stops and the race is over.
    state = racing.race(CHEAP_B, SEEDS, RUNS, {}, step=1 / 400)
    assert state.over and state.alive == [1, 0] and [r.seed for r in state.rounds] == [1, 2]
    assert re.match(r"with every seed run, the fixed design would pick it in 0\.\d% of 1000 simulated completions",
                    state.stops[2].reason)
    assert 0.95 <= state.settled < 1.0
    again = racing.race(CHEAP_B, SEEDS, RUNS, {}, step=1 / 400)
    assert (again.stops, again.settled) == (state.stops, state.settled)  # the same records, the same decisions


def test_an_incomplete_round_lacks_only_its_missing_runs():
    runs = {n: dict(r) for n, r in RUNS.items()}
    del runs[0][2]
    state = racing.race(SAME_COST, SEEDS, runs, {})
    assert [r.seed for r in state.rounds] == [1] and state.todo == [Run(0, 2)]


def test_a_diverged_seed_stops_a_candidate():
    runs = {1: {1: 0.60, 2: 0.61}, 2: {1: 0.50}, 0: {1: 0.55, 2: 0.555}}
    entrants = [Entrant(1, 0.2), Entrant(2, 0.05), Entrant(0, 0.1, baseline=True)]
    state = racing.race(entrants, SEEDS, runs, {2: {2}}, futility=0)
    assert state.stops[2].reason == "diverged on seed 2" and state.stops[2].round == 2
    assert state.todo == [Run(1, 3), Run(0, 3)]


def test_later_records_change_no_decision():
    # a fixed-design confirmation ran seed 3 for everyone before: the race still stops B after round 2
    later = {n: {**r, 3: 0.9} for n, r in RUNS.items()}
    again = racing.race(SAME_COST, SEEDS, later, {}, step=1 / 400)
    first = racing.race(SAME_COST, SEEDS, RUNS, {}, step=1 / 400)
    assert (again.rounds, again.stops, again.alive, again.todo) == (first.rounds, first.stops, first.alive, [])


def test_the_baseline_stops_last():
    runs = {1: {1: 0.50, 2: 0.52}, 2: {1: 0.49, 2: 0.505}, 0: {1: 0.60, 2: 0.61}}  # both below the baseline
    state = racing.race(SAME_COST, SEEDS, runs, {})
    assert sorted(state.stops) == [1, 2] and state.alive == [0] and state.over


def test_fixed_design_and_runs_trained():
    state = racing.fixed([1, 2], SEEDS, {1: {1: 0.5, 3: 0.5}}, {2: {2}})
    assert state.todo == [Run(1, 2), Run(2, 1), Run(2, 3)] and not state.rounds
    assert racing.trained([1, 2], SEEDS, {1: {1: 0.5, 3: 0.5}}, {2: {2}}) == 3


# Round 1 alone (seed 1 of RUNS) with the search's own runs (seed 2 of RUNS, as if on the study's seed): the
# noise-only block gives the fit of RUNS' 2 df (sd 0.0054), but A - B is round 1's +10.00 pp (se 0.0054 * sqrt 2),
# not the two runs' mean +9.50: the own runs widen intervals and never move a mean.
ROUND_1 = {n: {1: runs[1]} for n, runs in RUNS.items()}
OWN = {n: runs[2] for n, runs in RUNS.items()}


def test_own_runs_let_round_one_stop_a_candidate():
    state = racing.race(SAME_COST, SEEDS, ROUND_1, {}, step=1 / 400, own=OWN)
    (stop,) = state.rounds[0].stopped
    assert (stop.number, stop.round) == (2, 1)
    assert stop.reason == ("trial 1, no costlier, is ahead by +10.00 pp (95% t-interval +6.71 to +13.29, "
                           "seed noise pooled, 2 df)")
    # one undecided after round 1, yet the finalists get a second seed: the report's intervals need it
    assert not state.over and state.todo == [Run(1, 2), Run(0, 2)]
    done = racing.race(SAME_COST, SEEDS, {1: RUNS[1], 2: ROUND_1[2], 0: RUNS[0]}, {}, step=1 / 400, own=OWN)
    assert done.over and done.alive == [1, 0] and [r.seed for r in done.rounds] == [1, 2]


def test_a_lucky_own_run_widens_the_noise_and_lifts_nothing():
    lucky = OWN | {2: 0.95}  # B's own run far above its seed 1: it was selected for being high
    state = racing.race(SAME_COST, SEEDS, ROUND_1, {}, step=1 / 400, own=lucky)
    assert not state.stops and state.todo == [Run(1, 2), Run(2, 2), Run(0, 2)]


def test_futile_stops_the_least_likely_while_their_chances_sum_under_the_futility():
    assert racing.futile({1: 0.90, 2: 0.03, 3: 0.01, 4: 0.02, 5: 0.04}, [1, 2, 3, 4, 5], 0.05) == {3: 0.01, 4: 0.03}
    assert racing.futile({1: 0.90, 2: 0.06}, [1, 2], 0.05) == {}
    assert racing.futile({1: 0.0, 2: 0.0}, [2], 0.05) == {2: 0.0}  # only the racing ones


def test_completions_keep_the_runs_and_draw_the_rest_with_their_seed_effects():
    # A and C ran seeds 1 and 2 (seed 2 is 10 pp up for both), B only seed 1: B's seed 2 is drawn around
    # 0.50 + 0.10, and a seed 3 nobody ran around each config's own effect (it moves every mean alike).
    runs = {1: {1: 0.60, 2: 0.70}, 3: {1: 0.40, 2: 0.50}, 2: {1: 0.50}}
    entrants = [Entrant(1, 0.1), Entrant(2, 0.1), Entrant(3, 0.1)]
    fit = stats.pooled(runs, 1 / 400)
    got = racing.completions(entrants, SEEDS, runs, fit, 1 / 400, 4000, np.random.default_rng(0))
    assert got.shape == (4000, 3)
    assert np.allclose(got.mean(axis=0), [(0.6 + 0.7 + 0.6) / 3, (0.5 + 0.6 + 0.5) / 3, (0.4 + 0.5 + 0.4) / 3],
                       atol=0.002)
    whole = racing.completions(entrants, [1, 2], runs, fit, 1 / 400, 10, np.random.default_rng(0))
    assert np.ptp(whole[:, [0, 2]], axis=0).max() == 0  # every seed run: no draw
    assert np.allclose(whole[0, [0, 2]], [0.65, 0.45])
