"""bench/replay.py on a tiny hand-made table: the map from a proposal to its tabulated config, and the judging.

The table's format is `bench/curves.py`'s (one row per run, a JSON record beside it), read
back by `curves.load`; the search itself is `search.simulate` (tested against a live one
in tests/test_search_simulate.py).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import curves  # noqa: E402
import replay  # noqa: E402

import spaces  # noqa: E402
from search import preflight  # noqa: E402
from search import spec as spec_mod  # noqa: E402

EPOCHS = 4


def test_distance_scales_each_param_to_its_range():
    dists = {"lr": FloatDistribution(1e-4, 1e-2, log=True), "dropout": FloatDistribution(0.0, 0.6),
             "l2sp": CategoricalDistribution(["off", "on"])}
    a = {"lr": 1e-3, "dropout": 0.3, "l2sp": "on", "l2sp_lambda": 0.01}
    assert replay.distance(a, a, dists) == 0.0
    assert replay.distance(a, a | {"lr": 1e-2}, dists) == pytest.approx(0.5)  # one decade of two, in log
    assert replay.distance(a, a | {"dropout": 0.0}, dists) == pytest.approx(0.5)
    off = {k: v for k, v in a.items() if k != "l2sp_lambda"} | {"l2sp": "off"}
    assert replay.distance(a, off, dists) == pytest.approx(2.0)  # the choice, and the param only one has


def _spec() -> spec_mod.StudySpec:
    return spec_mod.load("demo").replace(image_size=32, epochs=EPOCHS, trials=12, concurrency=2, grace_period=1,
                                         reduction_factor=2, paper=True, config={"optim.step_size": EPOCHS})


def tiny_table(path: Path) -> Path:
    """The paper's six rows at 32 px, each with 2 seeds; '+ SCRA - L2SP' is clearly the best (0.9 vs <= 0.6)."""
    spec = _spec()
    base = spec.base_config()
    measure = preflight.measure_fn()
    finals = {"baseline": 0.5, "+ augmentation": 0.55, "+ L2SP": 0.6, "+ dropout": 0.45, "+ SCRA": 0.4,
              "+ SCRA - L2SP": 0.9}
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(curves.FIELDS)
        for number, (label, params) in enumerate(spaces.paper_rows(spec.space, base)):
            gflops = measure(spaces.config_from_params(spec.space, params, base))[0]
            for seed in range(2):
                final = finals[label] + 0.01 * seed
                curve = " ".join(f"{final * (e + 1) / EPOCHS:.4f}" for e in range(EPOCHS))
                writer.writerow((number, seed, label, gflops, curve, " ".join(["2.0"] * EPOCHS),
                                 json.dumps(params)))
    meta = {"epochs": EPOCHS, "seeds": 2, "spec": spec_mod.to_dict(spec), "commit": "test"}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def test_table_loads_every_run_and_judges_a_search_on_true_means(tmp_path):
    table = replay.Table(tiny_table(tmp_path / "tiny.csv"))
    assert len(table.configs) == 6 and table.seeds == 2
    assert table.best == pytest.approx(0.905) and table.baseline == pytest.approx(0.505)
    assert table.configs[0].curves[1] == pytest.approx([0.1275, 0.255, 0.3825, 0.51])

    outcome = replay.replay(table, _spec(), seed=0, method=replay.METHODS["default"])
    # The paper rows run first and at full fidelity: the best row's single run is the front's most accurate.
    assert outcome.max_acc == pytest.approx(0.905)
    assert table.best - outcome.max_acc == pytest.approx(0.0)
    assert outcome.confirmed == pytest.approx(0.905)  # the best paper row is a candidate: on means, it wins
    assert outcome.trials == 12 and outcome.epochs >= 6 * EPOCHS
    assert outcome.train_seconds == pytest.approx(2.0 * outcome.epochs)
    assert outcome.hv > 0 and outcome.hv0 > outcome.hv  # the baseline's reference leaves out the area below it
    assert math.isfinite(outcome.anytime[-1][1])
