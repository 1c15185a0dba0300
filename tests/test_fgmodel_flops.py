"""FLOPs and parameters on the meta device: the paper's convnextv2_large figures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fgmodel import flops
from fgmodel.budget import within_budget
from fgmodel.config import ModelConfig
from fgmodel.flops import Cost, baseline, measure

pytestmark = pytest.mark.usefixtures("one_thread")

LARGE = ModelConfig(backbone="convnextv2_large")


@pytest.mark.parametrize("num_classes, params", [(200, 196_727_240), (300, 196_880_940), (251, 196_805_627)])
def test_paper_baseline(num_classes, params):
    cost = measure(LARGE, num_classes, 224)
    assert cost.gflops == pytest.approx(68.720, abs=1e-3)
    assert cost.params == params
    assert round(cost.params / 1e6, 3) == {200: 196.727, 300: 196.881, 251: 196.806}[num_classes]


@pytest.mark.parametrize("stage, channels", [(0, 192), (1, 384), (2, 768), (3, 1536)])
def test_one_1x1_scra_costs_the_same_flops_anywhere(stage, channels):
    base = baseline(LARGE, 300)
    cost = measure(ModelConfig(backbone="convnextv2_large", scra_stages=(stage,)), 300, 224)
    assert cost.gflops - base.gflops == pytest.approx(0.231, abs=1e-3)
    assert cost.params - base.params == channels * channels + channels  # 37k / 148k / 591k / 2.36M


def test_3x3_scra_and_larger_images_cost_more():
    base = baseline(LARGE, 300)
    k3 = measure(ModelConfig(backbone="convnextv2_large", scra_stages=(0,), scra_kernel=3), 300, 224)
    assert k3.gflops - base.gflops == pytest.approx(2.081, abs=1e-3)  # 9 x the 1x1 MACs
    assert within_budget(k3.gflops, base.gflops, 0.05)
    three = measure(ModelConfig(backbone="convnextv2_large", scra_stages=(0, 1, 2), scra_kernel=3), 300, 224)
    assert not within_budget(three.gflops, base.gflops, 0.05)
    assert measure(LARGE, 300, 256).gflops / base.gflops == pytest.approx(256**2 / 224**2, rel=1e-3)


def test_cached_per_architecture():
    a = measure(ModelConfig(backbone="convnextv2_large", dropout=0.3, pretrained="x.pth"), 300, 224)
    assert a is measure(LARGE, 300, 224)  # dropout and weights do not change the cost
    assert isinstance(a, Cost)


def test_cli_in_process_over_budget_and_bad_input(capsys):
    assert flops.main(["--backbone", "convnextv2_large", "--num-classes", "300", "--scra-stages", "0", "1", "2",
                       "--scra-kernel", "3"]) == 0
    out = capsys.readouterr().out
    assert "74.96" in out and "+6.243 GFLOPs (+9.08%)" in out and "OVER the +5% budget" in out
    assert flops.main(["--num-classes", "300", "--scra-stages", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model.scra_stages: stage 4 does not exist") and err.count("\n") == 1
    assert flops.main(["--num-classes", "300", "--budget", "-0.1"]) == 2
    assert capsys.readouterr().err == "error: budget: must be >= 0, got -0.1\n"


@pytest.mark.slow
def test_cli_subprocess_prints_the_paper_numbers():
    out = subprocess.run(
        [sys.executable, "-m", "fgmodel.flops", "--backbone", "convnextv2_large", "--num-classes", "300",
         "--scra-stages", "0"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "GFLOPs:  68.95" in out and "params:  196.918M" in out
    assert "+0.231 GFLOPs (+0.34%)" in out
    assert "(68.72 GFLOPs, 196.881M)" in out and "within the +5% budget" in out
