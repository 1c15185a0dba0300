"""The trainable's stop at the dead tail and its GPU share, with Ray's runtime context and fit stubbed: no Ray run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fgmodel.config import to_dict
from fgmodel.fit import EpochReport, FitResult
from search import spec, trainable


def _epoch(epoch: int, epochs: int) -> EpochReport:
    return EpochReport(epoch=epoch, epochs=epochs, train_loss=1.0, val_top1=0.1 * epoch, val_top5=0.5,
                       l2sp_penalty=0.0, images_per_sec=10.0, seconds=2.0, skipped_images=0)


@pytest.fixture
def ray_stub(monkeypatch):
    """Ray's runtime context (one CPU) and ``tune.report`` into a list; fit runs every epoch its report
    callback lets it."""
    reports: list[dict] = []
    context = SimpleNamespace(get_assigned_resources=lambda: {"CPU": 1.0}, get_node_id=lambda: "node-a")
    monkeypatch.setattr(trainable.ray, "get_runtime_context", lambda: context)
    monkeypatch.setattr(trainable.tune, "report", reports.append)

    def fit(cfg, report):
        history = []
        for e in range(1, cfg.optim.epochs + 1):
            history.append(_epoch(e, cfg.optim.epochs))
            if report(history[-1]):
                return FitResult("stopped", "stopped by the report callback", history)
        return FitResult("completed", "", history)

    monkeypatch.setattr("fgmodel.fit.fit", fit)
    return reports


def _config(stop_after: int | None) -> dict:
    base = spec.load("demo").replace(epochs=30).base_config()  # 30 epochs in the config: its schedule
    return trainable.trial_config("trial_0", 0, to_dict(base), 1.0, stop_after=stop_after)


def test_fit_stops_after_the_trained_epochs_and_the_config_keeps_its_schedule(ray_stub):
    config = _config(10)
    trainable.train_trial(config)
    assert [r["epoch"] for r in ray_stub] == list(range(1, 11)) and ray_stub[-1]["epochs"] == 30
    assert ray_stub[-1]["train_seconds"] == 20.0 and ray_stub[-1]["node_id"] == "node-a"
    assert config["config"]["optim"]["epochs"] == 30


def test_without_a_stop_every_epoch_runs(ray_stub):
    trainable.train_trial(_config(None))
    assert len(ray_stub) == 30


@pytest.mark.parametrize(("gpu", "cuda", "capped"), [(0.5, True, [0.5]), (1.0, True, []), (0.5, False, [])])
def test_a_fraction_of_a_gpu_caps_the_process_memory(monkeypatch, gpu, cuda, capped):
    import torch

    calls: list[float] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f: calls.append(f))
    trainable.share_gpu(gpu)
    assert calls == capped
