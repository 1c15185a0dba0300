"""fgmodel.fit: the step on hand-made tensors (milliseconds), then `fit` on the demo task
(convnextv2_atto at 32-64 px, CPU, in-process loaders; marked slow)."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import demo_config
from torch import nn

import fgmodel.fit as fit_mod
from fgmodel import checkpoint
from fgmodel._train_step import NonFiniteLoss, Normalize, TrainStep, evaluate, pad_batch, to_device
from fgmodel.checkpoint import CheckpointError
from fgmodel.config import DataConfig, RunConfig, to_dict
from fgmodel.fit import EpochReport, fit, use_compile
from fgmodel.stats import unpack_hits

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the step, on a tiny hand-made model -------------------------------------------------


def _tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_micro_batches_accumulate_to_the_whole_batch_update():
    x, y = _batch(8)
    whole, micro = _tiny(), _tiny()
    loss_whole, _ = TrainStep(whole, torch.optim.SGD(whole.parameters(), lr=0.5))(x, y)
    step = TrainStep(micro, torch.optim.SGD(micro.parameters(), lr=0.5), micro_batch=3)  # 3 + 3 + 2
    loss_micro, _ = step(x, y)
    assert loss_micro == pytest.approx(loss_whole, rel=1e-6)
    assert loss_whole == pytest.approx(nn.functional.cross_entropy(_tiny()(x), y).item(), rel=1e-6)
    for a, b in zip(whole.parameters(), micro.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(next(whole.parameters()), next(_tiny().parameters()))  # it did step


class _RecordingPenalty:
    """Checks L2SP's place in the step: grads present, weights not yet updated."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.before = [p.detach().clone() for p in model.parameters()]
        self.calls = 0

    def apply_(self) -> torch.Tensor:
        self.calls += 1
        assert all(p.grad is not None for p in self.model.parameters())
        assert all(torch.equal(p, q) for p, q in zip(self.model.parameters(), self.before))
        return torch.tensor(0.25)


def test_l2sp_acts_after_backward_and_before_the_update():
    model = _tiny()
    penalty = _RecordingPenalty(model)
    _, value = TrainStep(model, torch.optim.Adam(model.parameters(), lr=0.1), penalty)(*_batch())
    assert penalty.calls == 1 and value.item() == 0.25
    assert not torch.equal(next(model.parameters()), penalty.before[0])


def test_non_finite_loss_raises_before_any_update():
    model = _tiny()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    penalty = _RecordingPenalty(model)
    x, y = _batch()
    x[3, 0, 2, 2] = float("nan")
    with pytest.raises(NonFiniteLoss, match="non-finite"):
        TrainStep(model, optimizer, penalty)(x, y)
    assert penalty.calls == 0 and optimizer.state == {}
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_to_device_makes_image_batches_channels_last_on_cpu_too():
    images, labels = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    moved, same = to_device(images, labels, torch.device("cpu"))
    assert moved.is_contiguous(memory_format=torch.channels_last) and torch.equal(moved, images)
    assert not images.is_contiguous(memory_format=torch.channels_last) and torch.equal(same, labels)
    logits = torch.rand(2, 5)  # not an image batch: left as it is
    assert to_device(logits, labels, torch.device("cpu"))[0].is_contiguous()


def test_uint8_batches_need_a_prepare_step_which_runs_on_the_device():
    x, y = _batch(4)
    images = (x.clamp(-2, 2) * 60 + 128).to(torch.uint8)
    with pytest.raises(TypeError, match="uint8 images need a prepare step"):
        TrainStep(_tiny(), torch.optim.SGD(_tiny().parameters(), lr=0.1))(images, y)
    stats = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    a, b = _tiny(), _tiny()
    loss_uint8, _ = TrainStep(a, torch.optim.SGD(a.parameters(), lr=0.5), prepare=Normalize(*stats, "cpu"))(images, y)
    floats = (images.float() / 255 - torch.tensor(stats[0]).view(3, 1, 1)) / torch.tensor(stats[1]).view(3, 1, 1)
    loss_float, _ = TrainStep(b, torch.optim.SGD(b.parameters(), lr=0.5))(floats, y)
    assert loss_uint8 == pytest.approx(loss_float, rel=1e-6)


def test_padding_the_last_evaluation_batch_changes_no_result():
    """A compiled run pads a short evaluation batch to the batch size; the padding's logits are cut off."""
    model = _tiny().eval()
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)) for n in (4, 4, 3)]
    cpu = torch.device("cpu")
    seen: list[int] = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    assert evaluate(model, batches, cpu, k=2, pad_to=4) == evaluate(model, batches, cpu, k=2)
    assert seen == [4, 4, 4, 4, 4, 3]  # padded, then as they come
    images = batches[2][0].contiguous(memory_format=torch.channels_last)
    padded = pad_batch(images, 4)
    assert padded.shape == (4, 3, 8, 8) and padded.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(padded[:3], images) and not padded[3].any()
    assert pad_batch(images, None) is images and pad_batch(images, 3) is images


def test_compile_defaults_to_cuda_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (use_compile(None, cpu), use_compile(None, cuda)) == (False, True)
    assert (use_compile(True, cpu), use_compile(False, cuda)) == (True, False)


def test_data_wait_counts_the_time_blocked_in_the_loader_only():
    class Slow:
        def __iter__(self):
            for i in range(3):
                time.sleep(0.05)
                yield i

    waited = fit_mod._Waited(Slow())
    got = []
    for item in waited:
        got.append(item)
        time.sleep(0.1)  # the step: not waiting for data
    assert got == [0, 1, 2] and 0.15 <= waited.seconds < 0.25


def test_evaluate_weighs_batches_by_their_images_and_clips_k_to_the_class_count():
    """The "model" passes logits through; a 4-image and a 3-image batch (top-1 2/4 and 1/3)."""
    batches = [
        (torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]]),
         torch.tensor([1, 2, 2, 1]), 0),
        (torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1]]), torch.tensor([0, 0, 0]), 0),
    ]
    cpu = torch.device("cpu")
    top1, top2, hits = evaluate(nn.Identity(), batches, cpu, k=2)
    assert (top1, top2) == (3 / 7, 5 / 7)  # not the batch mean (2/4 + 1/3) / 2
    assert unpack_hits(hits).tolist() == [True, False, True, False, True, False, False]  # image by image, in order
    assert evaluate(nn.Identity(), batches, cpu, k=5)[:2] == (3 / 7, 1.0)  # k = min(5, 3): every label in the top 3
    with pytest.raises(ValueError, match="evaluation set is empty"):
        evaluate(nn.Identity(), [], cpu)


# --- checkpoints ----------------------------------------------------------------------------


def _draws() -> tuple[list[float], list[float], list[float]]:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_state_survives_a_weights_only_round_trip(tmp_path: Path):
    checkpoint.seed_everything(7)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    checkpoint.save_atomic({"rng": checkpoint.rng_state()}, tmp_path / "c.pt")
    expected = _draws()
    checkpoint.seed_everything(123)
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "c.pt", ("rng",))["rng"])
    assert _draws() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_epoch_seed_depends_on_seed_and_epoch_only():
    assert checkpoint.epoch_seed(0, 1) == int(np.random.SeedSequence([0, 1]).generate_state(1)[0])
    assert 0 <= checkpoint.epoch_seed(2**40, 7) < 2**32
    assert len({checkpoint.epoch_seed(s, e) for s in range(3) for e in range(1, 4)}) == 9


def test_seed_everything_seeds_python_numpy_and_torch():
    checkpoint.seed_everything(11)
    first = _draws()
    checkpoint.seed_everything(11)
    assert _draws() == first
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    assert _draws() == first


def test_unreadable_checkpoints_raise_one_error_naming_the_file(tmp_path: Path):
    good = tmp_path / "last.pt"
    checkpoint.save_atomic({"epoch": 1, "model": {"w": torch.ones(1000)}}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt.*unreadable"):
        checkpoint.load(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"obj": object}, foreign)  # a pickled class: refused by weights_only
    with pytest.raises(CheckpointError, match="foreign.pt"):
        checkpoint.load(foreign)
    with pytest.raises(CheckpointError, match="lacks optimizer"):
        checkpoint.load(good, ("model", "optimizer"))
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "none.pt")


# --- the CLI's config ------------------------------------------------------------------------


def test_resume_accepts_changed_data_location_and_speed_settings_but_not_training_fields(tmp_path: Path):
    saved = RunConfig(data=DataConfig(task="demo", root="/old", cache_dir=None))
    moved = saved.replace(**{"data.root": "/new", "data.num_workers": 0, "data.cache_dir": "/cache",
                             "model.compile": True, "optim.micro_batch": 8, "optim.epochs": 40})
    fit_mod._check_resumable(tmp_path / "last.pt", to_dict(saved), moved)
    old_checkpoint = {section: {k: v for k, v in values.items() if k not in ("compile", "micro_batch")}
                      for section, values in to_dict(saved).items()}  # written before those fields existed
    fit_mod._check_resumable(tmp_path / "last.pt", old_checkpoint, moved)
    for key, value in (("optim.lr", 0.1), ("data.image_size", 64), ("augment.hflip_p", 0.5)):
        with pytest.raises(CheckpointError, match=rf"last.pt was written by another config \({key}: "):
            fit_mod._check_resumable(tmp_path / "last.pt", to_dict(saved), moved.replace(**{key: value}))




# --- fit on the demo task ----------------------------------------------------------------


def _metrics(history: list[EpochReport]) -> list[tuple[float, ...]]:
    return [(r.train_loss, r.val_top1, r.val_top5, r.l2sp_penalty) for r in history]


class _Killed(Exception):
    pass


def _kill_after_first_epoch(report: EpochReport) -> None:
    if report.epoch == 1:
        raise _Killed


@pytest.mark.slow
def test_fit_learns_and_reports_every_field(demo_root: Path):
    """From scratch, atto needs a low lr (1e-3 leaves it at chance for many epochs) and 48 px."""
    cfg = demo_config(demo_root).replace(**{
        "optim.optimizer": "adam", "optim.lr": 5e-4, "optim.batch_size": 32, "optim.epochs": 4,
        "optim.step_size": 5, "optim.l2sp_lambda": 1e-4, "model.dropout": 0.0, "data.image_size": 48,
        "data.val_fraction": 0.3, "augment.hflip_p": 0.0, "augment.rotation_p": 0.0, "augment.jitter_p": 0.0,
    })
    reports: list[EpochReport] = []
    result = fit(cfg, reports.append)

    assert result.status == "completed" and result.reason == "" and result.history == reports
    assert [(r.epoch, r.epochs) for r in reports] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    losses = [r.train_loss for r in reports]
    assert losses[0] < math.log(20) + 0.5 and losses[-1] < 0.8 * losses[0]  # starts near chance, then falls
    assert all(0.0 <= r.val_top1 <= r.val_top5 <= 1.0 for r in reports)
    # 240 validation images: chance is 5% top-1 (sd 1.4%) and 25% top-5 (sd 2.8%)
    assert result.best_top1 == max(r.val_top1 for r in reports) >= 0.2
    assert max(r.val_top5 for r in reports) >= 0.5
    assert all(0.0 < r.l2sp_penalty < 1.0 for r in reports)  # lambda 1e-4: positive and small
    assert [r.l2sp_penalty for r in reports] == sorted(r.l2sp_penalty for r in reports)  # weights drift away
    assert all(r.images_per_sec > 0 and 0 < r.seconds < 600 and r.skipped_images == 0 for r in reports)
    assert all(0.0 < r.data_wait < 1.0 for r in reports) and "data_wait" in reports[0].to_dict()
    from fgmodel.data import task_splits

    train_set, val_set = task_splits(cfg)[:2]
    trained = len(train_set) // 32 * 32  # full batches only: the short last one is dropped
    assert reports[0].seconds * reports[0].images_per_sec > trained  # seconds include evaluation
    for r in reports:  # every validation image's top-1 hit, adding up to the epoch's top-1
        hits = unpack_hits(r.val_hits)
        assert len(hits) == len(val_set) and hits.sum() / len(hits) == r.val_top1
    assert reports[0].val_hits != reports[-1].val_hits


@pytest.mark.slow
def test_report_can_stop_the_run_and_the_config_sets_compile_and_micro_batch(small_demo_root: Path, tmp_path: Path,
                                                                             monkeypatch):
    import torch._dynamo

    compiled, micro_batches, resets = [], [], []
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or model)  # inductor takes minutes
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(len(compiled)))
    real_step = fit_mod.TrainStep

    def recording_step(*args, **kwargs):
        step = real_step(*args, **kwargs)
        micro_batches.append(step.micro_batch)
        return step

    monkeypatch.setattr(fit_mod, "TrainStep", recording_step)
    seen = []
    cfg = demo_config(small_demo_root, **{"optim.epochs": 3, "optim.micro_batch": 12, "model.compile": True})
    result = fit(cfg, lambda r: seen.append(r) or True, output_dir=tmp_path)
    assert micro_batches == [12] and len(compiled) == 1 and compiled[0].num_classes == 20
    assert resets == [0]  # the compiler's caches cleared before compiling
    assert result.status == "stopped" and "after epoch 1 of 3" in result.reason
    assert [r.epoch for r in result.history] == [1] and seen == result.history
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (saved["status"], saved["epochs_run"], saved["eval_on"]) == ("stopped", 1, "val")


@pytest.mark.slow
def test_a_compiled_run_compiles_one_training_and_one_evaluation_graph_per_fit(small_demo_root: Path, monkeypatch):
    """Real dynamo (its eager backend: tracing and guards without inductor's minutes): odd set sizes
    (288 train and 32 + 3 eval images at batch 32) recompile nothing in a later epoch, and a second
    fit in the same process, as a Ray worker runs trial after trial, starts from empty caches."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounter

    real_compile = torch.compile
    counters: list[CompileCounter] = []

    def counting_compile(model):
        counters.append(CompileCounter())
        return real_compile(model, backend=counters[-1])

    monkeypatch.setattr(torch, "compile", counting_compile)
    # one fit's two graphs fill the limit: without the reset a second fit would run eager
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 2)
    batch_sizes: list[int] = []
    real_build = fit_mod.build_model

    def build_recording(*args, **kwargs):
        model = real_build(*args, **kwargs)
        model.register_forward_pre_hook(lambda module, inputs: batch_sizes.append(len(inputs[0])))
        return model

    monkeypatch.setattr(fit_mod, "build_model", build_recording)
    cfg = demo_config(small_demo_root, **{"model.compile": None, "optim.epochs": 2, "data.val_fraction": 0.1})
    assert fit(cfg).status == "completed" and counters == []  # compile: null is off on the CPU
    for _ in range(2):
        batch_sizes.clear()
        result = fit(cfg.replace(**{"model.compile": True}))
        assert result.status == "completed" and len(result.history) == 2
        assert counters[-1].frame_count == 2  # train and eval, compiled once each for both epochs
        assert set(batch_sizes) == {32}  # 9 training batches, the short eval batch of 3 padded to 32
    assert len(counters) == 2


@pytest.mark.slow
def test_non_finite_loss_ends_the_run_with_its_status(small_demo_root: Path, tmp_path: Path, monkeypatch):
    real_build = fit_mod.build_model
    forwards = []

    def build_with_nan(*args, **kwargs):
        model = real_build(*args, **kwargs)

        def poison(module, inputs, output):  # the third training forward returns NaN logits
            forwards.append(1)
            return output * float("nan") if len(forwards) == 3 else output

        model.register_forward_hook(poison)
        return model

    monkeypatch.setattr(fit_mod, "build_model", build_with_nan)
    result = fit(demo_config(small_demo_root), output_dir=tmp_path)
    assert result.status == "non_finite" and result.history == []
    assert "non-finite training loss (nan) at epoch 1, step 3" == result.reason
    assert len(forwards) == 3  # stopped at once
    assert not (tmp_path / "last.pt").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "non_finite"


@pytest.mark.slow
def test_a_huge_learning_rate_ends_the_run_as_non_finite(small_demo_root: Path):
    result = fit(demo_config(small_demo_root, **{"optim.lr": 1e6}))
    assert result.status == "non_finite" and result.history == [] and result.reason.startswith("non-finite")


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_metrics(small_demo_root: Path, tmp_path: Path):
    cfg = demo_config(small_demo_root)
    whole = fit(cfg, output_dir=tmp_path / "whole")
    with pytest.raises(_Killed):
        fit(cfg, _kill_after_first_epoch, output_dir=tmp_path / "killed")
    assert checkpoint.load(tmp_path / "killed" / "last.pt")["epoch"] == 1
    resumed_reports = []
    resumed = fit(cfg, resumed_reports.append, output_dir=tmp_path / "killed", resume=True)

    assert whole.status == resumed.status == "completed"
    assert [r.epoch for r in resumed_reports] == [2]  # only the missing epoch ran
    assert _metrics(resumed.history) == _metrics(whole.history)  # bit-identical, epoch 1 from the checkpoint
    a = checkpoint.load(tmp_path / "whole" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "killed" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.history[1].l2sp_penalty > 0 and math.isfinite(whole.history[1].train_loss)

    with pytest.raises(CheckpointError, match=r"another config \(optim.lr"):
        fit(cfg.replace(**{"optim.lr": 0.1}), output_dir=tmp_path / "killed", resume=True)
    last = tmp_path / "killed" / "last.pt"
    last.write_bytes(last.read_bytes()[:4096])
    with pytest.raises(CheckpointError, match="last.pt"):
        fit(cfg, output_dir=tmp_path / "killed", resume=True)


@pytest.mark.slow
def test_loader_workers_draw_the_same_augmentations_as_in_process_loading(small_demo_root: Path):
    """Per-sample seeds from the sampler: persistent workers remember nothing between epochs."""
    from fgmodel.data import build_loaders

    cfg = demo_config(small_demo_root)
    in_process = build_loaders(cfg, batch_size=64).train
    workers = build_loaders(cfg.replace(**{"data.num_workers": 2}), batch_size=64).train

    def epoch(loader, s: int) -> list[torch.Tensor]:
        loader.sampler.set_epoch(s)
        return [images for images, _, _ in loader]

    first = epoch(workers, 5)
    assert epoch(workers, 6)[0].shape == first[0].shape
    again = epoch(workers, 5)  # same persistent workers, a later pass with the same epoch seed
    reference = epoch(in_process, 5)
    assert len(first) == len(reference) == 4  # 288 images: 4 full batches of 64, the short last one dropped
    assert first[0].dtype == torch.uint8 and first[0].is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(first, again, reference))
    assert not torch.equal(epoch(in_process, 6)[0], reference[0])


@pytest.mark.slow
def test_killed_run_with_loader_workers_resumes_to_the_uninterrupted_metrics(small_demo_root: Path, tmp_path: Path):
    cfg = demo_config(small_demo_root, **{"data.num_workers": 2, "data.val_fraction": 0.25})
    whole = fit(cfg, output_dir=tmp_path / "whole")
    with pytest.raises(_Killed):
        fit(cfg, _kill_after_first_epoch, output_dir=tmp_path / "killed")
    resumed = fit(cfg, output_dir=tmp_path / "killed", resume=True)
    assert whole.status == resumed.status == "completed" and len(whole.history) == 2
    assert _metrics(resumed.history) == _metrics(whole.history)
    a = checkpoint.load(tmp_path / "whole" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "killed" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


