"""L2SP: the fused gradient pass equals autograd of the explicit penalty, on the right tensors."""

from __future__ import annotations

import pytest
import torch

from fgmodel.config import ModelConfig
from fgmodel.l2sp import L2SP
from fgmodel.model import build_model

pytestmark = pytest.mark.usefixtures("one_thread")

LAM = 0.05


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(backbone="convnextv2_atto", scra_stages=(1,)), 6)


def _drift(model) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))


def _loss(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y)


def test_fused_grad_equals_autograd_of_the_formula(model):
    l2sp = L2SP(model, LAM)
    ref = {n: p.detach().clone() for n, p in model.named_parameters()}
    _drift(model)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    named = dict(model.named_parameters())

    explicit = LAM * sum(((named[n] - ref[n]) ** 2).sum() for n in model.l2sp_param_names)
    (_loss(model, x, y) + explicit).backward()
    expected = {n: p.grad.clone() for n, p in named.items()}

    model.zero_grad(set_to_none=True)
    _loss(model, x, y).backward()
    plain = {n: p.grad.clone() for n, p in named.items()}
    penalty = l2sp.apply_()

    got = torch.cat([named[n].grad.flatten() for n in named])
    want = torch.cat([expected[n].flatten() for n in named])
    assert ((got - want).norm() / want.norm()).item() < 1e-5
    assert abs(penalty.item() - explicit.item()) / explicit.item() < 1e-5
    assert not penalty.requires_grad
    covered = set(model.l2sp_param_names)
    for n in named:
        if n not in covered:  # head classifier and SCRA: untouched by the pass
            assert n.startswith(("scra.", "backbone.head.fc.")), n
            torch.testing.assert_close(named[n].grad, plain[n], rtol=0, atol=0)
    assert len(covered) == len(named) - 4


def test_missing_grad_gets_the_penalty_gradient(model):
    l2sp = L2SP(model, LAM)
    _drift(model)
    stem = model.backbone.stem[0].weight
    assert stem.grad is None
    before = stem.detach().clone()
    l2sp.apply_()
    torch.testing.assert_close(stem.grad, 2 * LAM * (before - l2sp._refs[0]))


def test_zero_lambda_is_free(model):
    l2sp = L2SP(model, 0.0)
    assert l2sp._refs == [] and l2sp._params == []
    _drift(model)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert l2sp.apply_().item() == 0.0 and l2sp.penalty().item() == 0.0
    assert all(a is b for a, b in zip(grads, [p.grad for p in model.parameters()]))


def test_penalty_is_zero_at_the_reference_and_matches_after_a_step(model):
    l2sp = L2SP(model, LAM)
    assert l2sp.penalty().item() == 0.0
    with torch.no_grad():
        model.backbone.stem[0].bias.add_(0.1)  # 40 entries moved by 0.1
    assert l2sp.penalty().item() == pytest.approx(LAM * 40 * 0.01, rel=1e-5)


def test_negative_lambda_is_rejected(model):
    with pytest.raises(ValueError, match="l2sp_lambda"):
        L2SP(model, -0.1)
