"""search.racing on hand-made runs: rounds, stops, the baseline kept, and decisions that later records cannot change."""

from __future__ import annotations

from search import racing
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


def test_a_cheaper_candidate_is_not_stopped_by_a_costlier_one():
    entrants = [Entrant(1, 0.2), Entrant(2, 0.05), Entrant(0, 0.1, baseline=True)]  # B now the cheapest
    state = racing.race(entrants, SEEDS, RUNS, {})
    assert not state.stops and state.todo == [Run(1, 3), Run(2, 3), Run(0, 3)]


def test_an_incomplete_round_lacks_only_its_missing_runs():
    runs = {n: dict(r) for n, r in RUNS.items()}
    del runs[0][2]
    state = racing.race(SAME_COST, SEEDS, runs, {})
    assert [r.seed for r in state.rounds] == [1] and state.todo == [Run(0, 2)]


def test_a_diverged_seed_stops_a_candidate():
    runs = {1: {1: 0.60, 2: 0.61}, 2: {1: 0.50}, 0: {1: 0.55, 2: 0.555}}
    entrants = [Entrant(1, 0.2), Entrant(2, 0.05), Entrant(0, 0.1, baseline=True)]
    state = racing.race(entrants, SEEDS, runs, {2: {2}})
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
