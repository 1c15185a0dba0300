"""Every registered space yields valid configs, replays from its params, and holds the paper's rows."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import optuna
import pytest

import spaces
from fgmodel import flops
from fgmodel.config import PRESETS_DIR, ModelConfig, RunConfig, load_yaml, preset_names
from fgmodel.data import DEMO_PROFILE
from spaces.default import PAPER_PRESETS, image_sizes, size_fits

optuna.logging.set_verbosity(optuna.logging.WARNING)

DEMO_BASE = RunConfig().replace(**DEMO_PROFILE)
PAPER_BASE = load_yaml("paper_baseline")


def _sampled(name: str, base: RunConfig, n: int, seed: int = 0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(n):
        trial = study.ask()
        yield trial, spaces.get(name)(trial, base)


def test_registry():
    assert spaces.names() == ["default", "paper"]
    with pytest.raises(ValueError, match="unknown search space 'nope'.*default, paper"):
        spaces.get("nope")


@pytest.mark.parametrize("base", [PAPER_BASE, DEMO_BASE], ids=["paper", "demo"])
@pytest.mark.parametrize("name", ["default", "paper"])
def test_random_trials_give_valid_configs_that_replay(name, base):
    for trial, config in _sampled(name, base, 50):
        assert isinstance(config, RunConfig)  # RunConfig validates itself on construction
        assert spaces.config_from_params(name, trial.params, base) == config
        # Only the searched fields move; the rest is the base.
        assert config.data == dataclasses.replace(base.data, image_size=config.data.image_size)
        assert config.data.image_size in image_sizes(base.data.image_size)
        assert config.model.backbone == base.model.backbone
        assert config.optim.epochs == base.optim.epochs


def test_default_space_ranges_and_conditionals():
    base = DEMO_BASE
    seen_stages = set()
    for trial, config in _sampled("default", base, 200, seed=1):
        seen_stages.add(config.model.scra_stages)
        assert base.optim.lr / 5 <= config.optim.lr <= base.optim.lr * 5
        assert ("l2sp_lambda" in trial.params) == (trial.params["l2sp"] == "on")
        assert (config.optim.l2sp_lambda > 0) == (trial.params["l2sp"] == "on")
        assert ("scra_kernel" in trial.params) == bool(config.model.scra_stages)
        if not config.model.scra_stages:
            assert config.model.scra_kernel == 1
        assert config.augment.hue <= 0.1 and config.augment.brightness <= 0.5
        # Stepped floats are rounded: 0.25, not 0.25000000000000006.
        assert round(config.augment.hflip_p / 0.05, 9) == round(config.augment.hflip_p / 0.05)
    subsets = {s for r in range(5) for s in itertools.combinations(range(4), r)}
    assert seen_stages == subsets  # every placement, the empty one included


def test_every_scra_placement_replays():
    params = dict(spaces.paper_rows("default", DEMO_BASE)[0][1])
    for stages in itertools.product([False, True], repeat=4):
        p = params | {f"scra_after_{i}": on for i, on in enumerate(stages)}
        if any(stages):
            p["scra_kernel"] = 3
        config = spaces.config_from_params("default", p, DEMO_BASE)
        assert config.model.scra_stages == tuple(i for i, on in enumerate(stages) if on)
        assert config.model.scra_kernel == (3 if any(stages) else 1)


@pytest.mark.parametrize("name", ["default", "paper"])
def test_paper_rows_equal_the_presets(name):
    rows = spaces.paper_rows(name, PAPER_BASE)
    assert [label for label, _ in rows] == list(PAPER_PRESETS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a paper value outside the space's range warns
        for label, params in rows:
            assert spaces.config_from_params(name, params, PAPER_BASE) == load_yaml(PAPER_PRESETS[label])


def test_paper_rows_on_demo_base_keep_demo_fields():
    best = load_yaml("paper_best")
    rows = spaces.paper_rows("default", DEMO_BASE)
    label, params = rows[-1]
    config = spaces.config_from_params("default", params, DEMO_BASE)
    assert label == "+ SCRA - L2SP"  # Table 1's last row, the paper's best: row 5 without L2SP
    assert config.model.scra_stages == (0,) and config.model.scra_kernel == 1
    assert config.model.dropout == 0.45 and config.optim.l2sp_lambda == 0.0
    assert config.augment == best.augment
    assert config.optim.lr == DEMO_BASE.optim.lr
    assert config.data.image_size == DEMO_BASE.data.image_size
    assert config.model.backbone == "convnextv2_atto"
    row5 = spaces.config_from_params("default", dict(rows)["+ SCRA"], DEMO_BASE)
    assert row5 == config.replace(**{"optim.l2sp_lambda": 0.01})


def test_every_preset_is_labelled_with_its_table_1_row():
    assert sorted(preset_names()) == sorted(PAPER_PRESETS.values())
    for row, name in enumerate(PAPER_PRESETS.values(), start=1):
        first = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()[0]
        assert first.startswith(f"# Table 1 row {row}"), (name, first)


def test_image_sizes_bracket_the_base_in_multiples_of_8():
    assert image_sizes(224) == [168, 192, 224, 256]
    assert image_sizes(48) == [32, 40, 48, 56]
    assert image_sizes(32) == [32]  # nothing below ConvNeXt's 32 px


@pytest.mark.parametrize(
    "backbone, base_size",
    [("convnextv2_atto", 48), pytest.param("convnextv2_large", 224, marks=pytest.mark.slow)],  # large: 6 s
)
def test_image_sizes_within_the_budget_fit_it_measured(backbone, base_size):
    """Every size offered under a budget fits it when measured; at +5% nothing above the base is offered."""
    model = ModelConfig(backbone=backbone)
    baseline = flops.baseline(model, 200, base_size).gflops
    for budget in (0.0, 0.05, 0.35):
        for size in image_sizes(base_size, budget):
            assert flops.measure(model, 200, size).gflops <= (1 + budget) * baseline + 1e-9, (size, budget)
    assert image_sizes(base_size, 0.05) == [s for s in image_sizes(base_size) if s <= base_size]
    # 256 px costs +30.6% at 224: in at +35%, out at +5%.
    if base_size == 224:
        assert 256 in image_sizes(224, 0.35) and 256 not in image_sizes(224, 0.05)


def test_size_bound_is_safe_for_every_multiple_of_8():
    model = ModelConfig(backbone="convnextv2_atto")
    for base_size in (48, 56):
        baseline = flops.baseline(model, 20, base_size).gflops
        for size in range(32, base_size + 40, 8):
            for budget in (0.0, 0.05, 0.2, 0.5, 1.0):
                if size_fits(size, base_size, budget):
                    assert flops.measure(model, 20, size).gflops <= (1 + budget) * baseline + 1e-9, (size, budget)


def test_budgeted_space_draws_only_sizes_that_fit():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = set()
    for _ in range(40):
        trial = study.ask()
        drawn.add(spaces.get("default")(trial, DEMO_BASE, budget=0.05).data.image_size)
        config = spaces.get("paper")(study.ask(), DEMO_BASE, budget=0.05)  # the paper space takes it too
        assert config.data.image_size == DEMO_BASE.data.image_size
    assert drawn == {32, 40}  # at the demo's 40 px, 48 px would cost +44%


def test_config_from_params_is_strict():
    params = dict(spaces.paper_rows("default", DEMO_BASE)[0][1])
    with pytest.raises(ValueError, match="not used by search space 'default': bogus"):
        spaces.config_from_params("default", params | {"bogus": 1}, DEMO_BASE)
    del params["dropout"]
    with pytest.raises(ValueError, match="'dropout' is not found"):
        spaces.config_from_params("default", params, DEMO_BASE)
