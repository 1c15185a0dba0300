"""`search.simulate` against a live search: the same spec, seeds and curves give the same study, trial by trial.

Each trial's curve is a function of its finished config alone (`curve_for`), so the live search
(real Ray, the real trainable around a `fit` that reports the curve instead of training)
and the simulation see the same numbers; with one worker the order of events is fixed too.
Over-budget proposals (SCRA blocks at the budget's edge), MOASHA stops, COMPLETE trials
and a diverged one all happen.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import FrozenTrial

from search import attrs, preflight, run, simulate
from search import spec as spec_mod

EPOCHS = 4
DIVERGES = 0.4  # a config whose share (`_share`) falls below this diverges in its first epoch


def _share(config: dict[str, Any]) -> float:
    """A number in [0, 1) drawn from the config, whatever the data root (a test's temporary folder)."""
    data = {k: v for k, v in config["data"].items() if k != "root"}
    digest = hashlib.sha256(json.dumps({**config, "data": data}, sort_keys=True).encode()).hexdigest()
    return int(digest[:8], 16) / 16**8


def curve_for(config: dict[str, Any]) -> list[float]:
    """Val top-1 after each epoch, a function of the trial's finished config only (all NaN: diverged)."""
    share = _share(config)
    if share < DIVERGES:
        return [math.nan] * EPOCHS
    return [round(share * (0.4 + 0.15 * e), 4) for e in range(EPOCHS)]


def fake_trainable(config: dict[str, Any]) -> None:
    """`search.trainable.train_trial` around a fit that reports `curve_for` of the trial's config, training nothing."""
    import fgmodel.fit
    from fgmodel.fit import EpochReport, FitResult
    from search import attrs
    from search.trainable import train_trial

    real_fit = fgmodel.fit.fit
    curve = curve_for(config[attrs.CONFIG])

    def fit(cfg, report=None, **kwargs):
        history = []
        for epoch, top1 in enumerate(curve, 1):
            if not math.isfinite(top1):
                return FitResult("non_finite", f"non-finite loss in epoch {epoch}", history)
            rep = EpochReport(epoch, EPOCHS, 1.0, top1, top1, 0.0, 100.0, 1.0, 0)
            history.append(rep)
            if report(rep):
                return FitResult("stopped", "stopped", history)
        return FitResult("completed", "completed", history)

    fgmodel.fit.fit = fit
    try:
        train_trial(config)
    finally:
        fgmodel.fit.fit = real_fit


def demo_spec(root: Path, study_dir: Path) -> spec_mod.StudySpec:
    return spec_mod.load("demo").replace(
        image_size=32, epochs=EPOCHS, trials=8, concurrency=1, paper=False, grace_period=1, reduction_factor=2,
        data_root=str(root), study_dir=str(study_dir), name="sim", confirm=None, pretrained="none", seed=3,
        config={"optim.step_size": EPOCHS, "data.num_workers": 0},
    )


def fingerprint(trials: list[FrozenTrial]) -> list[tuple]:
    return [(t.number, t.state.name, t.values, t.params, t.user_attrs.get(attrs.CURVE),
             bool(t.user_attrs.get(attrs.OVER_BUDGET))) for t in trials]


@pytest.mark.slow
def test_simulation_replays_the_live_search(small_demo_root, tmp_path):
    import sys

    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module
    spec = demo_spec(small_demo_root, tmp_path)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        live = run.run_search(spec, trainable=fake_trainable, log=lambda line: None).study
    finally:
        ray.shutdown()

    base = spec.base_config()
    sim = simulate.simulate(
        spec, base, lambda t: simulate.Curve(curve_for(t.user_attrs[attrs.CONFIG]), [1.0] * EPOCHS),
        measure=preflight.measure_fn(), baseline_gflops=preflight.baseline_gflops(base, spec.image_size),
    )
    live_trials = live.get_trials()
    reasons = [str(t.user_attrs.get(attrs.REASON)) for t in live_trials]
    for what in ("completed", "stopped early", "non-finite", "over FLOPs budget"):  # the case covers each path
        assert any(what in r for r in reasons), (what, reasons)
    assert fingerprint(sim.study.get_trials()) == fingerprint(live_trials)
    assert sim.searcher.counted == spec.trials
