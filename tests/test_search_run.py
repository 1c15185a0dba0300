"""search.run's flags: --spec reads a file as given, --backbone alone takes timm's default weights, --pretrained."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fgmodel.config import ConfigError
from search import run
from search import spec as spec_mod


def _args(*argv: str):
    return run.build_parser().parse_args(list(argv))


def test_spec_path_without_suffix_is_read_as_given(tmp_path):
    path = tmp_path / "myspec"  # no .yaml: read as it is, not as myspec.yaml
    path.write_text("task: demo\ntrials: 5\n")
    assert run.load_spec(_args("--spec", str(path))).trials == 5


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "no such file"),
        (b"\x89PNG\r\n\x1a\n\x00\xff", "is not a study spec (not text)"),
        ("- task: demo\n", "is not a study spec (it holds a list"),
        ("model:\n  backbone: convnextv2_atto\noptim:\n  lr: 0.1\n", "is not a study spec (no task: key; it has "
                                                                     "model, optim; a run config goes to"),
        ("task: [demo\n", "is not a study spec (not valid YAML"),
        ("", "is empty, not a study spec"),
    ],
)
def test_a_file_that_is_not_a_study_spec_is_one_line(tmp_path, capsys, content, expect):
    path = tmp_path / "thing"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        spec_mod.load(path)
    assert info.value.field == "spec" and expect in str(info.value) and str(path) in str(info.value)
    assert run.main(["--spec", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expect in err


def test_a_directory_is_not_a_spec(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        spec_mod.load(tmp_path)


def test_task_name_still_finds_the_shipped_spec():
    assert run.load_spec(_args("--task", "foodx")).pretrained == "convnextv2_large.fcmae_ft_in22k_in1k"
    with pytest.raises(ConfigError, match="^task: no study spec .*known tasks"):
        spec_mod.load("nope")


def test_backbone_alone_takes_timm_default_weights(capsys):
    spec = run.load_spec(_args("--task", "foodx", "--backbone", "convnextv2_base"))
    assert (spec.backbone, spec.pretrained) == ("convnextv2_base", "convnextv2_base.fcmae_ft_in22k_in1k")
    assert "pretrained: convnextv2_base.fcmae_ft_in22k_in1k (timm's default" in capsys.readouterr().out
    # the base config builds with it (the tag matches the backbone)
    assert spec.base_config().model.pretrained == "convnextv2_base.fcmae_ft_in22k_in1k"


def test_pretrained_flag_wins_and_none_stays_none(tmp_path):
    spec = run.load_spec(_args("--task", "foodx", "--backbone", "convnextv2_base", "--pretrained", "none"))
    assert spec.pretrained == "none"
    spec = run.load_spec(_args("--task", "foodx", "--backbone", "convnextv2_base",
                               "--pretrained", "convnextv2_base.fcmae_ft_in1k"))
    assert spec.pretrained == "convnextv2_base.fcmae_ft_in1k"
    # the demo spec's own weights are made for any backbone: another backbone keeps them
    assert run.load_spec(_args("--task", "demo", "--backbone", "convnextv2_femto")).pretrained == "demo"


def test_pretrained_file_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "w.safetensors").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    spec = run.load_spec(_args("--task", "demo", "--pretrained", "w.safetensors"))
    assert spec.pretrained == str(tmp_path / "w.safetensors") and Path(spec.pretrained).is_absolute()


def test_unknown_backbone_is_one_line(capsys):
    assert run.main(["--task", "foodx", "--backbone", "convnextv2_gigantic"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: backbone: timm has no model 'convnextv2_gigantic'"


def test_shipped_spec_files_load_as_paths():
    for path in spec_mod.SPECS_DIR.glob("*.yaml"):
        assert spec_mod.load(path).task == yaml.safe_load(path.read_text())["task"]


def test_strategy_flags_override_the_spec():
    s = run.load_spec(_args("--task", "demo", "--sampler", "gp", "--scheduler", "asha", "--grace-period", "2",
                            "--reduction-factor", "3"))
    assert (s.sampler, s.scheduler, s.grace_period, s.reduction_factor) == ("gp", "asha", 2, 3)
    assert run.load_spec(_args("--task", "demo")).sampler == spec_mod.load("demo").sampler == "tpe"


def test_confirm_flags_set_keys_of_the_block_or_drop_it(tmp_path):
    assert spec_mod.load("demo").confirm == {"top": 1, "seeds": 2, "race": True}
    assert run.load_spec(_args("--task", "demo", "--confirm-top", "3")).confirm == {"top": 3, "seeds": 2, "race": True}
    four_seeds = run.load_spec(_args("--task", "demo", "--confirm-seeds", "4"))
    assert four_seeds.confirm == {"top": 1, "seeds": 4, "race": True}
    assert run.load_spec(_args("--task", "demo", "--no-confirm")).confirm is None
    path = tmp_path / "s.yaml"
    path.write_text("task: demo\nconfirm: null\n")  # no block: the flags make one
    assert run.load_spec(_args("--spec", str(path), "--confirm-seeds", "5")).confirm == {"seeds": 5}


@pytest.mark.parametrize(("argv", "expect"), [
    (["--no-confirm", "--confirm-top", "2"], "error: confirm: --no-confirm contradicts --confirm-top"),
    (["--confirm-seeds", "0"], "error: confirm.seeds: must be >= 1, got 0"),
    (["--sampler", "nsga2"], "error: sampler: must be 'tpe' or 'random' or 'gp', got 'nsga2' (Optuna's NSGA-II"),
    (["--scheduler", "hyperband"], "error: scheduler: must be 'moasha' or 'asha' or 'fifo', got 'hyperband'"),
    (["--grace-period", "0"], "error: grace_period: must be >= 1, got 0"),
    (["--reduction-factor", "1"], "error: reduction_factor: must be >= 2, got 1"),
])
def test_bad_strategy_or_confirm_flags_are_one_line_exit_2(tmp_path, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    assert run.main(["--task", "demo", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(expect) and "\n" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../x", "a/b", ".."])
def test_a_path_as_study_name_is_refused_and_creates_nothing(tmp_path, capsys, monkeypatch, name):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert run.main(["--task", "demo", "--name", name]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: name: must be a plain name, not a path, got {name!r}") and "\n" not in err
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*")] == [Path("work")]


def test_plan_prints_what_the_search_would_train_and_runs_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run.main(["--task", "foodx", "--plan", "--epoch-seconds", "78", "--concurrency", "8",
                     "--data-root", str(tmp_path / "nowhere")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("plan: a complete trial trains 10 of 30 epochs (schedule dead: lr <= 1% of its first "
                             "value from epoch 11 of 30); rungs at epochs 1, 3, 1/3 going on; 8 at a time")
    rows = {line[:16].strip(): line[16:].split() for line in out[2:6]}
    assert rows["paper rows"][:3] == ["224", "6", "60"] and rows["searched trials"][:2] == ["224", "58"]
    total_224 = float(rows["total"][3])
    assert total_224 <= 0.4 * 1132.4  # today's: 30 epochs, rungs 3/9/27, 6 candidates x 3 seeds
    assert float(rows["total"][-2]) == pytest.approx(total_224 * 78 / 3600, abs=0.1)  # GPU-hours
    assert list(tmp_path.iterdir()) == []  # no study, no data


def test_resource_and_dead_tail_flags():
    s = run.load_spec(_args("--task", "demo", "--concurrency", "auto", "--cpus-per-trial", "auto",
                            "--dead-lr-fraction", "0.05"))
    assert (s.concurrency, s.cpus_per_trial, s.dead_lr_fraction) == ("auto", "auto", 0.05)
    assert run.load_spec(_args("--task", "foodx", "--dead-lr-fraction", "off")).trained_epochs() == 30
    assert run.load_spec(_args("--task", "demo", "--concurrency", "3")).concurrency == 3


@pytest.mark.parametrize(("argv", "expect"), [
    (["--gpus-per-trial", "2"], "error: gpus_per_trial: a trial trains on one GPU (no data parallelism), so 2 would "
                                "leave the rest idle: use 1, or a fraction to share one"),
    (["--dead-lr-fraction", "2"], "error: dead_lr_fraction: must be in (0, 1) or null, got 2.0"),
])
def test_refused_resources_are_one_line_exit_2(tmp_path, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    assert run.main(["--task", "demo", *argv]) == 2
    assert capsys.readouterr().err.strip() == expect
    assert list(tmp_path.iterdir()) == []
