"""The demo's generated pretraining: deterministic, built once, and what every demo run starts from.

At the tiny recipe (`demo_weights.TINY`): the claims are about where the weights come
from and that they are the same, not about what they learned.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from demo_weights import TINY, build_tiny
from safetensors.torch import load_file

from fgmodel import pretrain_demo
from fgmodel.config import ConfigError, ModelConfig
from fgmodel.data import demo, demo_source
from fgmodel.l2sp import L2SP
from fgmodel.model import CLASSIFIER, build_model
from search import preflight
from search import spec as spec_mod

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def tiny(monkeypatch):
    monkeypatch.setattr(pretrain_demo, "RECIPE", TINY)


def test_source_images_are_a_function_of_seed_and_index():
    a, labels = demo_source.images(3, 1, 32)
    b, _ = demo_source.images(3, 1, 32)
    c, _ = demo_source.images(4, 1, 32)
    held, _ = demo_source.images(3, 1, 32, first=len(labels))
    assert a.shape == (60, 32, 32, 3) and labels.tolist() == list(range(60))
    assert (a == b).all() and not (a == c).all() and not (a == held).all()
    assert len(demo_source.CLASSES) == 60 and not set(demo_source.CLASSES) & set(demo.CLASSES)  # not the demo's


def _same_values(a: Path, b: Path) -> bool:
    """Every tensor equal in value (``torch.equal``: a zero may differ in sign between processes' float state)."""
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_same_seed_gives_the_same_weights(tmp_path: Path, tiny):
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    a = pretrain_demo.ensure(tmp_path / "a", progress=False)
    b = pretrain_demo.ensure(tmp_path / "b", progress=False)
    other = pretrain_demo.ensure(tmp_path / "c", seed=1, progress=False)
    assert a == pretrain_demo.weights_path(tmp_path / "a") and a.name == "convnextv2_atto.safetensors"
    assert _same_values(a, b) and not _same_values(a, other)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), rng)  # caller's kept
    assert sorted(p.name for p in a.parent.iterdir()) == ["convnextv2_atto.json", "convnextv2_atto.safetensors"]


def test_demo_weights_build_once_with_a_progress_line_then_load(tmp_path: Path, tiny, monkeypatch, capsys):
    cfg = ModelConfig(backbone="convnextv2_atto", pretrained="demo")
    first = build_model(cfg, 20, data_root=tmp_path)
    err = capsys.readouterr().err
    assert "demo pretraining: convnextv2_atto" in err and "100%" in err
    path = pretrain_demo.weights_path(tmp_path)
    assert first.pretrained == str(path)

    monkeypatch.setattr(pretrain_demo, "pretrain", lambda *a, **k: pytest.fail("trained again"))
    second = build_model(cfg, 20, data_root=tmp_path)
    assert "demo pretraining" not in capsys.readouterr().err
    saved = load_file(path)
    for model in (first, second):
        state = model.backbone.state_dict()
        assert all(torch.equal(state[k], v) for k, v in saved.items() if not k.startswith(CLASSIFIER))
        assert state["head.fc.weight"].shape == (20, 320) != saved["head.fc.weight"].shape  # a new head


def test_demo_weights_need_a_data_root():
    with pytest.raises(ConfigError, match="^model.pretrained: 'demo' names weights made under the data root"):
        build_model(ModelConfig(backbone="convnextv2_atto", pretrained="demo"), 20)


def test_l2sp_anchor_is_the_loaded_file_not_a_random_init(tmp_path: Path):
    path = build_tiny(tmp_path)
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="convnextv2_atto", pretrained=str(path), scra_stages=(0,)), 20)
    l2sp = L2SP(model, 0.01)
    saved = load_file(path)
    anchored = {name.removeprefix("backbone."): ref for name, ref in zip(l2sp.names, l2sp._refs, strict=True)}
    assert set(anchored) == {k for k in saved if not k.startswith(CLASSIFIER)}  # no head, no SCRA
    assert all(torch.equal(ref, saved[k]) for k, ref in anchored.items())
    torch.manual_seed(0)
    random_init = build_model(ModelConfig(backbone="convnextv2_atto"), 20).backbone.state_dict()
    assert not torch.equal(anchored["stem.0.weight"], random_init["stem.0.weight"])


def test_the_demo_search_resolves_the_weights_once_and_its_trials_load_them(tmp_path: Path, tiny):
    """Pre-flight: ``pretrained: demo`` becomes the file's path in the base config every trial gets."""
    spec = spec_mod.load("demo").replace(data_root=str(tmp_path), image_size=32)
    assert spec.pretrained == "demo"
    lines: list[str] = []
    base, source = preflight.resolve_pretrained(spec.base_config(), log=lines.append)
    path = pretrain_demo.weights_path(tmp_path.resolve())
    assert base.model.pretrained == source == str(path) and path.is_file()
    assert len(lines) == 2 and lines[0].startswith("pretraining convnextv2_atto") and "top-1" in lines[1]
    assert preflight.resolve_pretrained(spec.base_config(), log=pytest.fail)[0] == base  # built: nothing to say

    model = build_model(base.model, 20)  # what a trial's fit builds from its config
    saved = load_file(path)
    state = model.backbone.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items() if not k.startswith(CLASSIFIER))


def test_train_task_demo_fine_tunes_from_the_demo_weights(small_demo_root: Path, tmp_path: Path):
    """``python -m fgmodel.train --task demo --config paper_best``: fit starts from the file (lr ~0 keeps it there)."""
    from fgmodel.config import load_yaml
    from fgmodel.fit import fit
    from fgmodel.train import final_config

    cfg, _ = final_config(load_yaml("paper_best"), task="demo", data_root=str(small_demo_root), epochs=1)
    assert cfg.model.pretrained == "demo"
    fit(cfg.replace(**{"optim.lr": 1e-12, "data.num_workers": 0}), output_dir=tmp_path)
    trained = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    saved = load_file(pretrain_demo.weights_path(small_demo_root))
    for key, value in saved.items():
        if not key.startswith(CLASSIFIER):
            assert torch.allclose(trained[f"backbone.{key}"], value, atol=1e-8), key
