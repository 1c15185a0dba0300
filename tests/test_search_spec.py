"""Study specs: the shipped ones load, flags override, bad keys fail naming the key (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgmodel.config import ConfigError, to_dict
from search import preflight, run, spec
from search import study as study_mod


@pytest.mark.parametrize("task", ["cub", "cub_aircraft", "foodx", "demo"])
def test_shipped_specs_load(task):
    s = spec.load(task)
    cfg = s.base_config()
    assert s.task == task == cfg.data.task
    assert cfg.data.eval_on == "val"  # the search never selects on the test set
    assert cfg.optim.epochs == s.epochs and cfg.data.image_size == s.image_size
    assert cfg.model.backbone == s.backbone and cfg.model.scra_stages == ()
    assert s.budget == 0.05 and s.space == "default"


@pytest.mark.parametrize("task", ["cub", "cub_aircraft", "foodx"])
def test_paper_tasks_default_to_the_paper_setup(task):
    s = spec.load(task)
    assert (s.backbone, s.image_size, s.epochs, s.gpus_per_trial) == ("convnextv2_large", 224, 30, 1.0)
    assert s.paper and s.storage is None


def test_demo_is_a_cpu_search():
    s = spec.load("demo")
    assert s.gpus_per_trial == 0 and s.backbone == "convnextv2_atto" and s.trials >= 12
    assert s.base_config().data.num_workers == 0


def test_flags_override_spec_fields(tmp_path):
    args = run.build_parser().parse_args(
        ["--task", "cub", "--trials", "7", "--epochs", "2", "--gpus-per-trial", "0.25", "--cpus-per-trial", "3",
         "--concurrency", "8", "--data-root", str(tmp_path), "--backbone", "convnextv2_tiny", "--budget", "0.1",
         "--storage", "postgresql://u@h/db", "--address", "auto", "--name", "cub2", "--seed", "5",
         "--image-size", "160"]
    )
    s = spec.load(args.task, {k: getattr(args, k) for k in run.OVERRIDES})
    assert (s.trials, s.epochs, s.gpus_per_trial, s.cpus_per_trial, s.concurrency) == (7, 2, 0.25, 3.0, 8)
    assert (s.backbone, s.budget, s.storage, s.address, s.seed, s.image_size) == (
        "convnextv2_tiny", 0.1, "postgresql://u@h/db", "auto", 5, 160)
    assert s.study_name == "cub2" and s.directory.name == "cub2"
    cfg = s.base_config()
    assert cfg.data.root == str(tmp_path.resolve()) and cfg.optim.seed == 5 and cfg.optim.epochs == 2
    assert spec.load("cub", {"trials": None}).trials == spec.load("cub").trials  # unset flags keep the spec


def test_unknown_spec_key_names_it(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: demo\nconcurrencyy: 3\n")
    with pytest.raises(ConfigError, match="^concurrencyy: unknown spec key"):
        spec.load(path)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("task: demo\ntrials: many\n", "trials"),
        ("task: demo\ntrials: 0\n", "trials"),
        ("task: demo\ngpus_per_trial: 1.5\n", "gpus_per_trial"),
        ("task: mnist\n", "task"),
        ("task: demo\nconfig:\n  optim.lrr: 0.1\n", "optim.lrr"),
        ("task: demo\nconfig:\n  model.dropout: 2.0\n", "model.dropout"),
        ("task: demo\nconfig: 3\n", "config"),
        ("task: demo\nconfig:\n  - optim.lr\n", "config"),
        ("task: demo\nname: 7\n", "name"),
        ("trials: 3\n", "task"),
    ],
)
def test_bad_values_name_the_field(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        spec.load(path)
    assert info.value.field == field


def test_cli_unknown_key_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("task: demo\nbogus: 1\n")
    assert run.main(["--spec", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bogus: unknown spec key") and "\n" not in err


def test_missing_paper_dataset_fails_before_ray(tmp_path, capsys):
    code = run.main(["--task", "cub", "--data-root", str(tmp_path), "--study-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "CUB_200_2011" in err and "python -m fgmodel.data download" in err
    assert not (tmp_path / "s" / "optuna.db").exists()


def test_resume_command_repeats_the_flags():
    cmd = run.resume_command(["--task", "demo", "--trials", "20", "--name", "my run"])
    assert cmd == "python -m search.run --task demo --trials 20 --name 'my run' --resume"
    assert run.resume_command(["--task", "demo", "--resume"]).count("--resume") == 1


def test_nsga2_is_rejected_with_the_reason(tmp_path):
    path = tmp_path / "nsga2.yaml"
    path.write_text("task: demo\nsampler: nsga2\n")
    with pytest.raises(ConfigError) as info:
        spec.load(path)
    assert info.value.field == "sampler" and "COMPLETE" in str(info.value) and "tpe" in str(info.value)


@pytest.mark.parametrize(
    "key",
    ["data.eval_on", "data.task", "data.root", "data.image_size", "optim.epochs", "optim.seed", "model.backbone",
     "model.pretrained", "model.pretrained_fallback", "model.num_classes"],
)
def test_config_block_cannot_override_guarded_fields(tmp_path, key):
    path = tmp_path / "guarded.yaml"
    path.write_text(f"task: demo\nconfig:\n  {key}: test\n")
    with pytest.raises(ConfigError) as info:
        spec.load(path)
    assert info.value.field == f"config.{key}" and "\n" not in str(info.value)


def test_config_block_nested_sections_are_guarded_too(tmp_path):
    path = tmp_path / "nested.yaml"
    path.write_text("task: demo\nconfig:\n  data:\n    eval_on: test\n")
    with pytest.raises(ConfigError, match="test set") as info:
        spec.load(path)
    assert info.value.field == "config.data.eval_on"


def test_guarded_key_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "guarded.yaml"
    path.write_text("task: demo\nconfig:\n  data.eval_on: test\n")
    assert run.main(["--spec", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config.data.eval_on:") and "\n" not in err


def _attrs(s, base):
    return {"task": s.task, "base": s.base, "backbone": s.backbone, "image_size": s.image_size, "epochs": s.epochs,
            "budget": s.budget, "space": s.space, "seed": s.seed, "base_config": to_dict(base)}


def test_resume_with_the_same_spec_passes(tmp_path):
    s = spec.load("demo")
    attrs = _attrs(s, s.base_config())
    moved = s.replace(data_root=str(tmp_path), config={**s.config, "data.num_workers": 3})  # where, not what
    study_mod.check_resume(attrs, moved, moved.base_config())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seed": 7}, "seed"),
        ({"base": "paper_best"}, "base"),
        ({"config": {"optim.lr": 0.01}}, "optim.lr"),
        ({"config": {"data.val_fraction": 0.3}}, "data.val_fraction"),
        ({"pretrained": "/no/such/weights.safetensors"}, "model.pretrained"),
    ],
)
def test_resume_refuses_a_changed_meaning(change, field):
    s = spec.load("demo")
    attrs = _attrs(s, s.base_config())
    if "config" in change:
        change = {"config": {**s.config, **change["config"]}}
    changed = s.replace(**change)
    with pytest.raises(ConfigError) as info:
        study_mod.check_resume(attrs, changed, changed.base_config())
    assert info.value.field == field and "\n" not in str(info.value)


def test_pretrained_none_costs_nothing(monkeypatch):
    import fgmodel.model

    monkeypatch.setattr(fgmodel.model, "build_model", lambda *a, **k: pytest.fail("built a model"))
    base = spec.load("demo").replace(pretrained="none").base_config()
    assert preflight.resolve_pretrained(base, log=pytest.fail) == (base, "none")


def test_unavailable_pretrained_falls_back_once_in_the_driver(tmp_path):
    lines = []
    base = spec.load("demo").replace(pretrained=str(tmp_path / "missing.safetensors")).base_config()
    resolved, source = preflight.resolve_pretrained(base, log=lines.append)
    assert resolved.model.pretrained == "none" and source.startswith("none (fallback")
    assert len(lines) == 1 and lines[0].startswith("warning:") and "\n" not in lines[0]


def test_unavailable_pretrained_without_fallback_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "strict.yaml"
    path.write_text(f"task: demo\nbackbone: convnextv2_atto\npretrained: {tmp_path / 'missing.safetensors'}\n"
                    f"pretrained_fallback: false\nimage_size: 32\ndata_root: {tmp_path / 'data'}\n")
    code = run.main(["--spec", str(path), "--study-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "missing.safetensors" in err and "\n" not in err
    assert not (tmp_path / "s" / "optuna.db").exists()


@pytest.mark.parametrize(
    ("storage", "expect"),
    [
        ("nonsense", "cannot open the storage nonsense"),
        ("postgresql+psycopg2://u:secret@localhost/db", "pip install psycopg2-binary"),
    ],
)
def test_bad_storage_is_one_line_exit_2(tmp_path, capsys, monkeypatch, storage, expect):
    monkeypatch.setattr(preflight, "check_data", lambda base: None)
    code = run.main(["--task", "demo", "--storage", storage, "--study-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expect in err and "\n" not in err and "secret" not in err


def test_ctrl_c_before_ray_is_one_line_exit_130(tmp_path, capsys, monkeypatch):
    def interrupt(base):
        raise KeyboardInterrupt

    monkeypatch.setattr(preflight, "check_data", interrupt)
    code = run.main(["--task", "demo", "--study-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 130 and err.startswith("interrupted before the trials started") and "\n" not in err


@pytest.mark.parametrize("task", ["cub", "cub_aircraft", "foodx"])
def test_paper_tasks_confirm_the_front(task):
    assert spec.load(task).confirm == {"top": 4, "seeds": 3, "race": True, "futility": 0.15}


@pytest.mark.parametrize(("text", "field"), [
    ("confirm: 3\n", "confirm"),
    ("confirm:\n  top: 0\n", "confirm.top"),
    ("confirm:\n  seeds: two\n", "confirm.seeds"),
    ("confirm:\n  seeds: true\n", "confirm.seeds"),
    ("confirm:\n  trials: 2\n", "confirm.trials"),
    ("confirm:\n  futility: 1\n", "confirm.futility"),
    ("confirm:\n  futility: -0.1\n", "confirm.futility"),
    ("confirm:\n  futility: yes\n", "confirm.futility"),
])
def test_bad_confirm_block_names_the_field(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text("task: demo\n" + text)
    with pytest.raises(ConfigError) as info:
        spec.load(path)
    assert info.value.field == field


def test_confirm_block_may_be_partial_or_null(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("task: demo\nconfirm:\n  seeds: 5\n")
    assert spec.load(path).confirm == {"seeds": 5}
    path.write_text("task: demo\nconfirm:\n  futility: 0\n")  # an int 0: no curtailment
    assert spec.load(path).confirm == {"futility": 0}
    path.write_text("task: demo\nconfirm: null\n")
    assert spec.load(path).confirm is None


def test_resume_of_a_study_older_than_a_config_field(tmp_path):
    """A base config stored before data.split_seed existed means its default (None): the resume goes on."""
    s = spec.load("demo")
    attrs = _attrs(s, s.base_config())
    del attrs["base_config"]["data"]["split_seed"]
    study_mod.check_resume(attrs, s, s.base_config())
    with pytest.raises(ConfigError) as info:
        study_mod.check_resume(attrs, s, s.base_config().replace(**{"data.split_seed": 4}))
    assert info.value.field == "data.split_seed"


@pytest.mark.parametrize("name", ["../x", "a/b", "/tmp/x", "..", ".", "", "a\\b", "x/.."])
def test_a_study_name_is_a_name_not_a_path(name):
    with pytest.raises(ConfigError) as info:
        spec.load("demo", {"name": name})
    assert info.value.field == "name" and "not a path" in str(info.value) and "\n" not in str(info.value)


def test_a_plain_name_makes_the_folder_under_studies():
    s = spec.load("demo", {"name": "my run.v2"})
    assert s.directory == (Path("studies") / "my run.v2").resolve() and s.study_name == "my run.v2"


@pytest.mark.parametrize("task", ["cub", "cub_aircraft", "foodx"])
def test_paper_specs_train_to_the_dead_tail_on_every_gpu(task):
    s = spec.load(task)
    assert (s.concurrency, s.cpus_per_trial, s.dead_lr_fraction) == ("auto", "auto", 0.01)
    assert s.trained_epochs() == 10 and s.base_config().optim.epochs == 30  # the exported schedule stays 30


def test_trained_epochs_follow_the_base_schedule_and_the_fraction():
    demo = spec.load("demo")  # one x0.1 decay before its last epoch: 10% is alive
    assert demo.trained_epochs() == demo.epochs
    cut = demo.replace(epochs=30, config={**demo.config, "optim.step_size": 2})
    assert cut.trained_epochs() == 4 and cut.replace(dead_lr_fraction=None).trained_epochs() == 30
    assert cut.replace(dead_lr_fraction=0.001).trained_epochs() == 6


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("gpus_per_trial: 2", "gpus_per_trial", "a trial trains on one GPU (no data parallelism), so 2 would"),
        ("concurrency: lots", "concurrency", "expected a number or 'auto', got str 'lots'"),
        ("concurrency: 0", "concurrency", "must be >= 1 or 'auto', got 0"),
        ("concurrency: 2.5", "concurrency", "expected a number or 'auto', got float 2.5"),
        ("cpus_per_trial: 0", "cpus_per_trial", "must be > 0 or 'auto', got 0"),
        ("cpus_per_trial: true", "cpus_per_trial", "expected a number or 'auto', got bool True"),
        ("dead_lr_fraction: 1.5", "dead_lr_fraction", "must be in (0, 1) or null, got 1.5"),
    ],
)
def test_resource_and_dead_tail_fields_are_checked(tmp_path, text, field, says):
    path = tmp_path / "bad.yaml"
    path.write_text(f"task: demo\n{text}\n")
    with pytest.raises(ConfigError) as info:
        spec.load(path)
    assert info.value.field == field and says in str(info.value) and "\n" not in str(info.value)


def test_auto_and_null_load():
    s = spec.load("demo", {"concurrency": "auto", "cpus_per_trial": "auto"}).replace(dead_lr_fraction=None)
    assert (s.concurrency, s.cpus_per_trial, s.dead_lr_fraction) == ("auto", "auto", None)
