"""fgmodel.train, the final-training CLI: how it builds the run's config, then runs on the demo task (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import demo_config

import fgmodel.train as train_mod
from fgmodel.config import DataConfig, ModelConfig, RunConfig, dump_yaml, load_yaml
from fgmodel.data import DEMO_PROFILE, head_size
from fgmodel.train import final_config

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the step, on a tiny hand-made model -------------------------------------------------



def test_final_config_switches_a_paper_preset_to_the_demo_profile():
    paper = load_yaml("paper_best")
    cfg, notes = final_config(paper, task="demo", data_root="/d", epochs=3)
    assert (cfg.data.task, cfg.data.root, cfg.data.eval_on, cfg.optim.epochs) == ("demo", "/d", "test", 3)
    assert cfg.replace(**{**DEMO_PROFILE, "optim.epochs": 3}) == cfg  # the profile, but for the flag
    assert (cfg.model.scra_stages, cfg.model.dropout, cfg.optim.l2sp_lambda) == (paper.model.scra_stages, 0.45, 0.0)
    assert len(notes) == 1 and "demo profile" in notes[0]


def test_cli_flags_set_the_runtime_fields():
    args = train_mod._parser().parse_args(["--config", "paper_best", "--compile", "--micro-batch", "16"])
    cfg, _ = final_config(load_yaml(args.config), compile=args.compile, micro_batch=args.micro_batch)
    assert (cfg.model.compile, cfg.optim.micro_batch) == (True, 16)
    args = train_mod._parser().parse_args(["--config", "paper_best"])
    assert (args.compile, args.micro_batch) == (None, None)  # absent: the config's own values stay
    cfg, _ = final_config(load_yaml("paper_best").replace(**{"optim.micro_batch": 4}), compile=args.compile)
    assert (cfg.model.compile, cfg.optim.micro_batch) == (None, 4)


def test_final_config_keeps_an_exported_config_as_is_but_for_test_eval():
    exported = RunConfig(model=ModelConfig(backbone="convnextv2_atto", num_classes=20), data=DataConfig(task="demo"))
    cfg, notes = final_config(exported)
    assert notes == [] and cfg == exported.replace(**{"data.eval_on": "test"})
    moved, _ = final_config(exported, task="cub")
    assert moved.model.num_classes is None and head_size(moved) == 200


# --- fit and the CLI on the demo task --------------------------------------------------------


@pytest.mark.slow
def test_cli_trains_writes_its_outputs_and_reports_a_bad_checkpoint_in_one_line(small_demo_root: Path, tmp_path: Path,
                                                                              capsys):
    config = tmp_path / "exported.yaml"
    dump_yaml(demo_config(small_demo_root, **{"optim.epochs": 1}), config)
    out = tmp_path / "run"
    assert train_mod.main(["--config", str(config), "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["status"], metrics["eval_on"], metrics["epochs_run"]) == ("completed", "test", 1)
    assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 1.0 and metrics["top1"] == metrics["history"][0]["val_top1"]
    assert load_yaml(out / "config.yaml") == load_yaml(config).replace(**{"data.eval_on": "test"})
    assert {p.name for p in out.iterdir()} == {"metrics.json", "config.yaml", "best.pt", "last.pt"}
    printed = capsys.readouterr().out
    assert f"test top-1 {metrics['top1']:.2%}" in printed and "not a selection criterion" in printed

    last = out / "last.pt"
    last.write_bytes(last.read_bytes()[:-100])
    code = train_mod.main(["--config", str(config), "--output", str(out), "--resume", "--epochs", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: checkpoint ") and "last.pt" in err and "Traceback" not in err


def test_cli_rejects_bad_input_in_one_line_before_training(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: 0.001\n  learning_rate: 0.1\n")
    assert train_mod.main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: optim.learning_rate: unknown key") and err.count("\n") == 1
    assert train_mod.main(["--config", "paper_best", "--micro-batch", "0"]) == 2
    assert capsys.readouterr().err == "error: optim.micro_batch: must be >= 1 or null, got 0\n"
    assert train_mod.main(["--config", "paper_best", "--resume"]) == 2
    assert capsys.readouterr().err == "error: --resume needs --output, the folder of the run to continue\n"
    assert train_mod.main(["--config", "paper_best", "--resume", "--output", "run"]) == 2
    assert capsys.readouterr().err == "error: nothing to resume: run/last.pt does not exist\n"
    untrainable = tmp_path / "aircraft.yaml"
    untrainable.write_text("data:\n  task: aircraft\n")  # loadable and checkable, no run task
    assert train_mod.main(["--config", str(untrainable), "--seeds", "2"]) == 2
    known = "cub, cub_aircraft, demo, foodx"
    assert capsys.readouterr().err == f"error: data.task: unknown task 'aircraft'; known: {known}\n"
    assert sorted(tmp_path.iterdir()) == [untrainable, bad]  # no run folder


def test_cli_ctrl_c_says_how_to_resume(tmp_path: Path, capsys, monkeypatch):
    def interrupted(cfg, **kwargs):
        assert (cfg.model.compile, cfg.optim.micro_batch, kwargs["output_dir"]) == (True, 4, tmp_path / "run")
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "fit", interrupted)
    code = train_mod.main(["--config", "paper_best", "--task", "demo", "--output", str(tmp_path / "run"),
                           "--compile", "--micro-batch", "4"])
    assert code == 130
    assert capsys.readouterr().err == f"interrupted; continue with --resume --output {tmp_path / 'run'}\n"


@pytest.mark.slow
def test_cli_seeds_writes_each_run_and_the_mean_and_standard_error(small_demo_root: Path, tmp_path: Path, capsys):
    config = tmp_path / "best.yaml"
    dump_yaml(demo_config(small_demo_root, **{"optim.epochs": 1}), config)  # optim.seed 3
    out = tmp_path / "run"
    assert train_mod.main(["--config", str(config), "--output", str(out), "--seeds", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    each = [json.loads((out / f"seed_{seed}" / "metrics.json").read_text())["top1"] for seed in (3, 4)]
    assert metrics["seeds"] == [3, 4] and [r["top1"] for r in metrics["runs"]] == each
    assert [load_yaml(out / f"seed_{seed}" / "config.yaml").optim.seed for seed in (3, 4)] == [3, 4]
    assert metrics["top1_mean"] == pytest.approx(sum(each) / 2)
    assert metrics["top1_se"] == pytest.approx(abs(each[0] - each[1]) / 2)  # n = 2: sd / sqrt(2) = |a - b| / 2
    assert metrics["eval_on"] == "test" and metrics["completed"] == 2
    printed = capsys.readouterr().out.splitlines()[-1]
    assert printed.startswith(f"test top-1 {metrics['top1_mean']:.2%} +- {metrics['top1_se']:.2%}")
    assert f"over 2 seeds: {each[0]:.2%}, {each[1]:.2%}" in printed

    # --resume continues every seed's folder: both are finished, so nothing changes
    assert train_mod.main(["--config", str(config), "--output", str(out), "--seeds", "2", "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["top1_mean"] == metrics["top1_mean"]
