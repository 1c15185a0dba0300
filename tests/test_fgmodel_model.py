"""build_model: SCRA placement, dropout position, pretrained loading (convnextv2_atto, 32-64 px)."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file

from fgmodel.config import ConfigError, ModelConfig
from fgmodel.model import FGModel, PretrainedUnavailable, build_model

pytestmark = pytest.mark.usefixtures("one_thread")

ATTO_CHANNELS = (40, 80, 160, 320)


def atto(**kwargs) -> ModelConfig:
    return ModelConfig(backbone="convnextv2_atto", **kwargs)


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("stages", [(0,), (1,), (2,), (3,), (0, 2, 3)])
def test_forward_backward_every_placement(stages, kernel):
    torch.manual_seed(0)
    model = build_model(atto(scra_stages=stages, scra_kernel=kernel), 7)
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    assert sorted(model.scra) == [str(s) for s in stages]
    for stage in stages:
        conv = model.scra[str(stage)].conv
        assert conv.weight.shape == (ATTO_CHANNELS[stage], ATTO_CHANNELS[stage], kernel, kernel)
        assert conv.weight.grad.abs().sum() > 0
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0


def test_convnext_v1_works_too():
    model = build_model(ModelConfig(backbone="convnext_atto", scra_stages=(0, 3), dropout=0.2), 5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5) and model.backbone.head.drop.p == 0.2
    assert model.scra["3"].conv.weight.shape == (320, 320, 1, 1)


def test_gate_sits_after_each_stage():
    """Each gate has its stage's output shape, and the next module receives input * gate."""
    torch.manual_seed(0)
    model = build_model(atto(scra_stages=(0, 1, 2, 3)), 5).eval()
    seen: dict[tuple[str, int], torch.Tensor] = {}
    for stage in range(4):
        block = model.scra[str(stage)]
        block.gate.register_forward_hook(lambda m, i, o, s=stage: seen.__setitem__(("gate", s), o))
        block.register_forward_pre_hook(lambda m, i, s=stage: seen.__setitem__(("scra_in", s), i[0]))
        after = model.backbone.stages[stage + 1] if stage < 3 else model.backbone.head
        after.register_forward_pre_hook(lambda m, i, s=stage: seen.__setitem__(("next_in", s), i[0]))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    for stage in range(4):
        gate = seen[("gate", stage)]
        side = 64 // (4 * 2**stage)
        assert gate.shape == (2, ATTO_CHANNELS[stage], side, side)
        assert 0 < gate.min() and gate.max() < 1
        torch.testing.assert_close(seen[("next_in", stage)], seen[("scra_in", stage)] * gate, rtol=0, atol=0)


def test_scra_output_difference_proves_placement():
    """A gate fixed at 0.5 halves that stage's output; fixed near 1 it is the plain backbone."""
    torch.manual_seed(0)
    plain = build_model(atto(), 5).eval()
    gated = build_model(atto(scra_stages=(1,)), 5).eval()
    gated.backbone.load_state_dict(plain.backbone.state_dict())
    outs = {}
    for name, m in (("plain", plain), ("gated", gated)):
        m.backbone.stages[1].register_forward_hook(lambda mod, i, o, name=name: outs.__setitem__(name, o))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.nn.init.zeros_(gated.scra["1"].conv.weight)
        torch.nn.init.zeros_(gated.scra["1"].conv.bias)
        gated(x), plain(x)
        torch.testing.assert_close(outs["gated"], 0.5 * outs["plain"])
        gated.scra["1"].conv.bias.fill_(30.0)  # sigmoid(30) == 1 in float32
        torch.testing.assert_close(gated(x), plain(x), rtol=0, atol=0)


def test_dropout_sits_before_fc_and_is_off_in_eval():
    torch.manual_seed(0)
    p = 0.4
    model = build_model(atto(dropout=p), 5)
    head = model.backbone.head
    names = [n for n, _ in head.named_children()]
    assert names.index("drop") == names.index("fc") - 1 and head.drop.p == p
    fc_in: list[torch.Tensor] = []
    head.fc.register_forward_pre_hook(lambda m, i: fc_in.append(i[0]))
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        model.eval()
        e1, e2 = model(x), model(x)
        model.train()
        t1, t2 = model(x), model(x)
    torch.testing.assert_close(e1, e2, rtol=0, atol=0)
    assert (fc_in[0] != 0).all()  # eval: no dropout
    assert not torch.equal(t1, t2)
    train_in = fc_in[2]
    zero_rate = (train_in == 0).float().mean().item()
    assert abs(zero_rate - p) < 0.05  # 16 x 320 features
    kept = train_in != 0
    torch.testing.assert_close(train_in[kept], fc_in[0][kept] / (1 - p))  # inverted dropout on the same features


def test_l2sp_names_cover_backbone_not_head_or_scra():
    model = build_model(atto(scra_stages=(0, 3)), 5)
    names = set(model.l2sp_param_names)
    all_names = {n for n, _ in model.named_parameters()}
    assert names <= all_names
    assert not any(n.startswith(("scra.", "backbone.head.fc.")) for n in names)
    assert all_names - names == {"backbone.head.fc.weight", "backbone.head.fc.bias",
                                 "scra.0.conv.weight", "scra.0.conv.bias", "scra.3.conv.weight", "scra.3.conv.bias"}


def _source(num_classes: int = 10) -> FGModel:
    torch.manual_seed(1)
    return build_model(atto(), num_classes)


def _assert_backbone_equal(a: FGModel, b: FGModel, skip: str = "\0") -> int:
    sa, sb = a.backbone.state_dict(), b.backbone.state_dict()
    compared = 0
    for key, value in sa.items():
        if not key.startswith(skip):
            torch.testing.assert_close(sb[key], value, rtol=0, atol=0)
            compared += 1
    return compared


def test_local_safetensors_same_class_count_loads_everything(tmp_path):
    src = _source(10)
    path = tmp_path / "w.safetensors"
    save_file(src.backbone.state_dict(), str(path))
    model = build_model(atto(pretrained=str(path), scra_stages=(0,)), 10)
    assert _assert_backbone_equal(src, model) == len(src.backbone.state_dict())
    assert len(model.l2sp_param_names) == len(list(src.backbone.parameters())) - 2  # all but head.fc


def test_local_pth_other_class_count_skips_the_head(tmp_path):
    src = _source(10)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": src.state_dict(), "epoch": 3}, path)  # an FGModel checkpoint
    torch.manual_seed(5)
    model = build_model(atto(pretrained=str(path)), 7)
    torch.manual_seed(5)
    fresh = build_model(atto(), 7)  # same seed, nothing loaded: the head a random init gives
    _assert_backbone_equal(src, model, skip="head.fc.")
    assert model.backbone.head.fc.weight.shape == (7, 320)
    torch.testing.assert_close(model.backbone.head.fc.weight, fresh.backbone.head.fc.weight, rtol=0, atol=0)
    assert "backbone.head.norm.weight" in model.l2sp_param_names
    assert not any(n.startswith("backbone.head.fc") for n in model.l2sp_param_names)


def test_timm_training_checkpoint_loads_its_ema_weights(tmp_path):
    """timm's train.py saves ``state_dict`` (DDP: ``module.`` keys), ``state_dict_ema`` and ``args``."""
    import argparse

    src, ema = _source(10), build_model(atto(), 10)
    path = tmp_path / "checkpoint-7.pth"
    torch.save({"epoch": 7, "args": argparse.Namespace(lr=0.1),
                "state_dict": {f"module.{k}": v for k, v in src.backbone.state_dict().items()},
                "state_dict_ema": ema.backbone.state_dict()}, path)
    model = build_model(atto(pretrained=str(path)), 10)
    assert _assert_backbone_equal(ema, model) == len(ema.backbone.state_dict())
    assert not torch.equal(model.backbone.stem[0].weight, src.backbone.stem[0].weight)
    no_ema = tmp_path / "no_ema.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.backbone.state_dict().items()}}, no_ema)
    assert _assert_backbone_equal(src, build_model(atto(pretrained=str(no_ema)), 10)) > 0


def test_checkpoint_of_another_backbone_is_rejected(tmp_path):
    path = tmp_path / "femto.safetensors"
    save_file(build_model(ModelConfig(backbone="convnextv2_femto"), 10).backbone.state_dict(), str(path))
    with pytest.raises(ValueError, match="does not fit the backbone"):
        build_model(atto(pretrained=str(path)), 10)


def test_missing_file_fails_in_one_line_or_warns_with_fallback(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(PretrainedUnavailable) as info:
        build_model(atto(pretrained=str(missing)), 5)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)
    with pytest.warns(UserWarning, match="falling back to random init"):
        model = build_model(atto(pretrained=str(missing), pretrained_fallback=True), 5)
    assert model.pretrained == "random (fallback)"
    assert len(model.l2sp_param_names) == len(list(model.backbone.parameters())) - 2


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(PretrainedUnavailable, match="convnextv2_atto.fcmae_ft_in1k"):
        build_model(atto(pretrained="convnextv2_atto.fcmae_ft_in1k"), 5)
    with pytest.warns(UserWarning, match="falling back"):
        build_model(atto(pretrained="convnextv2_atto.fcmae_ft_in1k", pretrained_fallback=True), 5)
    with pytest.raises(ConfigError, match="model.pretrained"):
        build_model(atto(pretrained="convnextv2_atto.no_such_tag"), 5)


def test_an_unreachable_hub_is_asked_offline_and_the_mode_restored(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    import fgmodel.model as model_mod

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(model_mod, "_reachable", lambda url: False)
    seen = []
    real_create = model_mod.timm.create_model

    def create(*args, **kwargs):
        seen.append(hub.HF_HUB_OFFLINE)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(model_mod.timm, "create_model", create)
    with pytest.raises(PretrainedUnavailable, match="unreachable and they are not cached"):
        build_model(atto(pretrained="convnextv2_atto.fcmae_ft_in1k"), 5)
    assert seen == [True] and hub.HF_HUB_OFFLINE is False


def test_meta_device_allocates_and_loads_nothing():
    model = build_model(atto(pretrained="/does/not/exist.pth", scra_stages=(1,)), 5, device="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert model(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 5)


def test_unknown_backbone_names_the_field():
    with pytest.raises(ConfigError, match="model.backbone"):
        build_model(ModelConfig(backbone="convnextv2_nope"), 5)


def test_deepcopy_keeps_scra_with_the_copy():
    model = build_model(atto(scra_stages=(2,)), 5).eval()
    twin = copy.deepcopy(model)
    with torch.no_grad():
        torch.nn.init.zeros_(twin.scra["2"].conv.weight)
        torch.nn.init.zeros_(twin.scra["2"].conv.bias)
        x = torch.randn(1, 3, 32, 32)
        assert not torch.equal(model(x), twin(x))
