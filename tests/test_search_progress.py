"""search.progress: the progress line and its estimate of the time left, on hand-made numbers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.progress import (
    Counts,
    best_within_budget,
    count,
    eta_seconds,
    format_duration,
    progress_line,
    trained_durations,
)

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _trial(state, values=None, seconds=None, epochs=0, excess=None):
    t = create_trial(
        state=state,
        values=values,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs={"epochs_run": epochs, "over_budget": excess is not None and excess > 0},
        system_attrs={"constraints:flops_budget": excess} if excess is not None else {},
    )
    if seconds is not None:
        t.datetime_start, t.datetime_complete = T0, T0 + timedelta(seconds=seconds)
    return t


TRIALS = [
    _trial(TrialState.COMPLETE, [0.80, 1.0], seconds=300, epochs=3, excess=0.0),
    _trial(TrialState.COMPLETE, [0.90, 1.2], seconds=320, epochs=3, excess=-0.1),
    _trial(TrialState.PRUNED, seconds=100, epochs=1, excess=0.0),  # stopped by ASHA
    _trial(TrialState.PRUNED, seconds=0.01, epochs=0, excess=0.3),  # over budget: never trained
    _trial(TrialState.FAIL, seconds=80, epochs=1),
    _trial(TrialState.RUNNING),
    _trial(TrialState.WAITING),
]


def test_counts_and_best_within_budget():
    assert count(TRIALS) == Counts(complete=2, running=1, pruned=2, failed=1)
    died = _trial(TrialState.FAIL, seconds=50, epochs=1)
    died.set_user_attr("reason", "driver died")  # re-run on resume: not a failure of the search
    assert count([*TRIALS, died]) == Counts(complete=2, running=1, pruned=2, failed=1)
    assert best_within_budget(TRIALS) == 0.90
    # a COMPLETE trial whose constraint is violated is not "within budget"
    over = [*TRIALS, _trial(TrialState.COMPLETE, [0.95, 2.0], seconds=10, epochs=3, excess=0.5)]
    assert best_within_budget(over) == 0.90
    assert best_within_budget(TRIALS[2:]) is None


def test_trained_durations_leave_out_untrained_trials():
    assert trained_durations(TRIALS) == [300.0, 320.0, 100.0, 80.0]
    died = _trial(TrialState.FAIL, seconds=7200, epochs=1)  # failed by a resume two hours later
    died.set_user_attr("reason", "driver died")
    assert trained_durations([*TRIALS, died]) == [300.0, 320.0, 100.0, 80.0]


@pytest.mark.parametrize(
    ("durations", "remaining", "concurrency", "running", "expected"),
    [
        ([100, 200, 300], 4, 2, [50, 250], 475.0),  # mean 200: rests 150 + 0, plus 4 x 200, over 2 slots
        ([100, 200, 300], 1, 4, [], 200.0),  # one trial left: its own duration, not 200 / 4
        ([100, 200, 300], 0, 2, [20], 180.0),  # only the running one's rest
        ([100, 200, 300], 0, 2, [], 0.0),
        ([], 5, 2, [10], None),  # nothing finished yet: no estimate
    ],
)
def test_eta(durations, remaining, concurrency, running, expected):
    assert eta_seconds(durations, remaining, concurrency, running) == expected


def test_format_duration():
    assert [format_duration(s) for s in (0, 44.6, 60, 725, 3599, 3600, 11220)] == [
        "0s", "45s", "1m00s", "12m05s", "59m59s", "1h00m", "3h07m"]


def test_progress_line():
    line = progress_line(Counts(7, 2, 5, 1), 0.81234, 725, 1500)
    assert line == ("[12m05s] 7 complete, 2 running, 5 pruned, 1 failed; "
                    "best val_top1 within budget 0.8123; about 25m00s left")
    assert progress_line(Counts(), None, 5, None) == (
        "[5s] 0 complete, 0 running, 0 pruned, 0 failed; best val_top1 within budget none yet; time left unknown")
    assert progress_line(Counts(), None, 5, None, 0.123).endswith("; time left unknown; data wait 12%")


def test_data_wait_is_the_running_trials_last_epochs():
    import optuna

    from search.progress import data_wait

    study = optuna.create_study(directions=["maximize", "minimize"])
    waits = [[0.5, 0.1], [0.3], [], [0.9]]
    for wait in waits:
        study.ask().set_user_attr("data_wait", wait)
    study.tell(3, state=TrialState.FAIL)  # finished: its loaders are no more
    assert data_wait(study.get_trials()) == pytest.approx(0.2)
    assert data_wait([]) is None


def test_reporter_prints_every_30_s_with_counts_and_estimate():
    import optuna

    from search.progress import Reporter

    study = optuna.create_study(directions=["maximize", "minimize"])
    for t in TRIALS[:5]:  # 2 complete, 2 pruned (one over budget), 1 failed; trained: 300, 320, 100, 80 s
        study.add_trial(t)
    now = [1000.0]
    lines: list[str] = []
    reporter = Reporter(study, n_trials=9, concurrency=2, log=lines.append, clock=lambda: now[0])
    now[0] += 29.0
    assert reporter.tick() is None and lines == []
    now[0] += 1.0
    line = reporter.tick()
    # 5 asked, 1 over budget (not counted): 9 - 4 = 5 to train, mean 200 s, over 2 slots: 500 s
    assert line == lines[0] == ("[30s] 2 complete, 0 running, 2 pruned, 1 failed; best val_top1 within budget 0.9000; "
                                "about 8m20s left")
    now[0] += 10.0
    assert reporter.tick() is None  # 10 s after the last line
    now[0] += 20.0
    assert reporter.tick().startswith("[1m00s] ")
