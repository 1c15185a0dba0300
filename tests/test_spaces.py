"""Every registered space yields valid configs, replays from its params, and holds the paper's rows."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import optuna
import pytest

import spaces
from fgmodel.config import RunConfig, load_yaml
from fgmodel.data import DEMO_PROFILE
from spaces.default import image_sizes

optuna.logging.set_verbosity(optuna.logging.WARNING)

PAPER_PRESETS = {
    "baseline": "paper_baseline",
    "+ augmentation": "paper_augment",
    "+ L2SP": "paper_l2sp",
    "+ dropout": "paper_dropout",
    "+ SCRA": "paper_best",
}
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
    label, params = spaces.paper_rows("default", DEMO_BASE)[-1]
    config = spaces.config_from_params("default", params, DEMO_BASE)
    assert label == "+ SCRA"
    assert config.model.scra_stages == (0,) and config.model.scra_kernel == 1
    assert config.model.dropout == 0.45 and config.optim.l2sp_lambda == 0.01
    assert config.augment == best.augment
    assert config.optim.lr == DEMO_BASE.optim.lr
    assert config.data.image_size == DEMO_BASE.data.image_size
    assert config.model.backbone == "convnextv2_atto"


def test_image_sizes_bracket_the_base_in_multiples_of_8():
    assert image_sizes(224) == [168, 192, 224, 256]
    assert image_sizes(48) == [32, 40, 48, 56]


def test_config_from_params_is_strict():
    params = dict(spaces.paper_rows("default", DEMO_BASE)[0][1])
    with pytest.raises(ValueError, match="not used by search space 'default': bogus"):
        spaces.config_from_params("default", params | {"bogus": 1}, DEMO_BASE)
    del params["dropout"]
    with pytest.raises(ValueError, match="'dropout' is not found"):
        spaces.config_from_params("default", params, DEMO_BASE)
