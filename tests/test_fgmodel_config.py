"""RunConfig: YAML round trip, presets, and errors that name their field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from fgmodel.config import (
    RESUME_FREE_KEYS,
    ConfigError,
    RunConfig,
    coerce,
    dump_yaml,
    flatten,
    from_dict,
    from_mapping,
    load_yaml,
    preset_names,
    to_dict,
    unflatten,
)
from fgmodel.data import head_size


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_round_trips(name, tmp_path):
    cfg = load_yaml(name)
    path = tmp_path / f"{name}.yaml"
    dump_yaml(cfg, path)
    assert load_yaml(path) == cfg
    assert from_dict(to_dict(cfg)) == cfg


def test_presets_hold_the_paper_rows():
    assert {"paper_baseline", "paper_best"} <= set(preset_names())
    best = load_yaml("paper_best")
    assert best.model.scra_stages == (0,) and best.model.dropout == 0.45
    assert best.optim.l2sp_lambda == 0.0 and best.augment.rotation_deg == 15.0  # Table 1's last row: no L2SP
    assert load_yaml("paper_scra").optim.l2sp_lambda == 0.01
    assert load_yaml("paper_baseline").model.scra_stages == ()


def test_round_trip_keeps_types(tmp_path):
    cfg = RunConfig().replace(**{"model.scra_stages": [1, 3], "optim.lr": 3e-4, "model.num_classes": 12})
    dump_yaml(cfg, tmp_path / "c.yaml")
    back = load_yaml(tmp_path / "c.yaml")
    assert back == cfg and back.model.scra_stages == (1, 3) and back.model.num_classes == 12


@pytest.mark.parametrize("section, values, field", [
    ("model", {"colour": 1}, "model.colour"),
    ("optim", {"lr": "fast"}, "optim.lr"),
    ("model", {"dropout": 1.0}, "model.dropout"),
    ("model", {"dropout": -0.1}, "model.dropout"),
    ("optim", {"l2sp_lambda": -0.01}, "optim.l2sp_lambda"),
    ("model", {"scra_stages": [0, 4]}, "model.scra_stages"),
    ("optim", {"epochs": True}, "optim.epochs"),
    ("model", {"scra_kernel": 2}, "model.scra_kernel"),
    ("optim", {"micro_batch": 0}, "optim.micro_batch"),
    ("optim", {"micro_batch": 2.5}, "optim.micro_batch"),
    ("optim", {"seed": -1}, "optim.seed"),
    ("optim", {"seed": 2**32}, "optim.seed"),
    ("model", {"compile": "yes"}, "model.compile"),
    ("nonsense", {}, "nonsense"),
])
def test_each_error_names_its_field(section, values, field, tmp_path):
    with pytest.raises(ConfigError) as info:
        from_dict({section: values})
    assert info.value.field.startswith(field) and str(info.value).startswith(field)
    path = tmp_path / "bad.yaml"
    lines = "".join(f"  {k}: {v!r}\n" for k, v in values.items())
    path.write_text(f"{section}:\n{lines}" if values else f"{section}: {{}}\n")
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_yaml(path)


def test_replace_copies_and_validates():
    base = RunConfig()
    changed = base.replace(**{"optim.epochs": 3, "model.dropout": 0.2})
    assert (changed.optim.epochs, changed.model.dropout) == (3, 0.2)
    assert (base.optim.epochs, base.model.dropout) == (30, 0.0)
    assert changed.data == base.data
    with pytest.raises(ConfigError, match=r"optim\.nope"):
        base.replace(**{"optim.nope": 1})
    with pytest.raises(ConfigError, match=r"model\.dropout"):
        base.replace(**{"model.dropout": 1.5})


def test_num_classes_comes_from_the_task_unless_set():
    assert head_size(RunConfig().replace(**{"data.task": "cub_aircraft"})) == 300
    assert head_size(RunConfig().replace(**{"data.task": "foodx", "model.num_classes": 10})) == 10


def test_an_unknown_task_fails_where_the_run_is_built_naming_data_task():
    """The config type knows no tasks; the task table checks them when a run takes its head size."""
    cfg = RunConfig().replace(**{"data.task": "imagenet", "model.num_classes": 10})
    with pytest.raises(ConfigError, match=r"^data\.task: unknown task 'imagenet'; known: .*cub") as info:
        head_size(cfg)
    assert info.value.field == "data.task"


def test_config_error_survives_pickling():
    """Raised in a Ray or DataLoader worker, it must reach the driver intact."""
    import pickle

    error = pickle.loads(pickle.dumps(ConfigError("model.dropout", "must be in [0, 1), got 1.5")))
    assert (error.field, str(error)) == ("model.dropout", "model.dropout: must be in [0, 1), got 1.5")


def test_flatten_and_unflatten_are_inverses_and_survive_json():
    cfg = RunConfig().replace(**{"model.scra_stages": [0, 2], "optim.micro_batch": 16, "model.compile": True})
    flat = flatten(to_dict(cfg))
    assert flat["model.scra_stages"] == [0, 2] and flat["optim.micro_batch"] == 16 and flat["data.cache_dir"] is None
    assert json.loads(json.dumps(flat)) == flat  # tuples came out as lists
    assert len(flat) == sum(len(values) for values in to_dict(cfg).values()) == 34
    assert all(key.count(".") == 1 for key in flat)
    assert from_dict(unflatten(flat)) == cfg
    assert flatten({"data": {"root": "/d"}, "a": {"b": {"c": (1, 2)}}}) == {"data.root": "/d", "a.b.c": [1, 2]}
    assert unflatten({"data.root": "/d", "data.num_workers": 0, "optim.lr": 0.1}) == {
        "data": {"root": "/d", "num_workers": 0}, "optim": {"lr": 0.1}}
    with pytest.raises(ConfigError, match="'section.key'"):
        unflatten({"lr": 0.1})


def test_coerce_checks_types_without_converting():
    assert coerce("optim.lr", float, 1) == 1.0 and isinstance(coerce("optim.lr", float, 1), float)
    assert coerce("model.scra_stages", tuple[int, ...], [0, 3]) == (0, 3)
    assert coerce("optim.micro_batch", int | None, None) is None
    with pytest.raises(ConfigError, match=r"model\.scra_stages\[1\]: expected int, got str"):
        coerce("model.scra_stages", tuple[int, ...], [0, "3"])
    with pytest.raises(ConfigError, match="expected int, got bool"):
        coerce("optim.epochs", int, True)
    with pytest.raises(ConfigError, match="expected float, got str"):
        coerce("optim.lr", float, "1e-3")


@dataclasses.dataclass(frozen=True)
class _Inner:
    n: int = 1


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    extra: dict[str, int] | None = None
    anything: dict[str, Any] = dataclasses.field(default_factory=dict)


def test_from_mapping_is_one_strict_loader_for_any_dataclass():
    """The loader of run configs and study specs: nested sections, mappings of a type, required fields."""
    got = from_mapping(_Outer, {"name": "x", "inner": {"n": 3}, "extra": {"a": 2}, "anything": {"k": [1, "v"]}})
    assert got == _Outer("x", _Inner(3), {"a": 2}, {"k": [1, "v"]})
    assert from_mapping(_Outer, {"name": "x", "inner": None}) == _Outer("x")  # an empty YAML section
    for values, field, message in [
        ({"name": "x", "colour": 1}, "colour", "unknown key (known: anything, extra, inner, name)"),
        ({"name": "x", "inner": {"m": 1}}, "inner.m", "unknown key (known: n)"),
        ({"name": "x", "inner": {"n": "3"}}, "inner.n", "expected int, got str '3'"),
        ({"name": "x", "inner": 3}, "inner", "expected a mapping, got int 3"),
        ({"name": "x", "extra": {"a": True}}, "extra.a", "expected int, got bool True"),
        ({"name": "x", "extra": [1]}, "extra", "expected a mapping, got list [1]"),
        ({"name": "x", "anything": {1: 2}}, "anything.1", "expected str, got int 1"),
        ({"inner": {}}, "name", "missing"),
    ]:
        with pytest.raises(ConfigError) as info:
            from_mapping(_Outer, values)
        assert (info.value.field, info.value.message) == (field, message)
    with pytest.raises(ConfigError, match=r"^spec\.colour: unknown spec key \(known: "):
        from_mapping(_Outer, {"name": "x", "colour": 1}, prefix="spec.", unknown="unknown spec key")


def test_resume_free_keys_are_real_fields_about_data_and_speed():
    flat = flatten(to_dict(RunConfig()))
    assert set(RESUME_FREE_KEYS) <= set(flat)
    assert set(RESUME_FREE_KEYS) == {"data.root", "data.num_workers", "data.cache_dir", "model.compile",
                                     "optim.micro_batch"}


def test_runtime_settings_default_to_auto_and_round_trip(tmp_path):
    base = RunConfig()
    assert (base.model.compile, base.optim.micro_batch) == (None, None)  # compile: by device (fgmodel.fit)
    for compile in (True, False, None):
        cfg = base.replace(**{"model.compile": compile, "optim.micro_batch": 8})
        dump_yaml(cfg, tmp_path / "c.yaml")
        assert load_yaml(tmp_path / "c.yaml") == cfg
    for text, value in (("true", True), ("false", False), ("null", None)):  # YAMLs written before null existed
        (tmp_path / "old.yaml").write_text(f"model:\n  compile: {text}\n")
        assert load_yaml(tmp_path / "old.yaml").model.compile is value
