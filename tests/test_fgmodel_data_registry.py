"""The task table: filled by each loader module's decorator, the head size of a run, readable without torch.

Its import cycles are checked with every other module's, in tests/test_imports.py.
"""

import subprocess
import sys
from pathlib import Path

import pytest

import fgmodel.data
from fgmodel.config import ConfigError, RunConfig
from fgmodel.data import (
    NUM_CLASSES,
    TaskData,
    _registry,
    cub,
    get_task,
    head_size,
    load_task,
    register_task,
    task_names,
)

PAPER_HEADS = {"cub": 200, "cub_aircraft": 300, "foodx": 251, "demo": 20}


def test_every_task_is_registered_with_its_head_size():
    assert {name: get_task(name).num_classes for name in task_names()} == {**PAPER_HEADS, "aircraft": 100}
    assert get_task("cub").load is cub.load
    with pytest.raises(ValueError, match="^unknown task 'birds'; known: aircraft, cub, cub_aircraft, demo, foodx$"):
        load_task("birds", ".")


def test_aircraft_alone_is_loadable_but_no_run_task():
    assert dict(NUM_CLASSES) == PAPER_HEADS and len(NUM_CLASSES) == 4
    with pytest.raises(KeyError):
        NUM_CLASSES["aircraft"]
    known = "cub, cub_aircraft, demo, foodx"
    with pytest.raises(ConfigError, match=f"^data.task: unknown task 'aircraft'; known: {known}$"):
        head_size(RunConfig().replace(**{"data.task": "aircraft"}))


def test_a_registered_task_reaches_the_config(monkeypatch):
    monkeypatch.setattr(_registry, "TASKS", dict(_registry.TASKS))  # the table as it was, after the test

    @register_task("toy", num_classes=3, description="three classes")
    def load(root) -> TaskData:
        return TaskData([], [], ["a", "b", "c"])

    assert load_task("toy", ".").classes == ["a", "b", "c"] and task_names()[-1] == "toy"
    assert head_size(RunConfig().replace(**{"data.task": "toy"})) == 3  # NUM_CLASSES is a live view
    with pytest.raises(ValueError, match="^task 'toy' is already registered"):
        register_task("toy", num_classes=4, description="again")(load)
    assert get_task("toy").num_classes == 3


def test_torch_names_load_on_first_use_and_unknown_names_fail():
    assert fgmodel.data.build_loaders.__module__ == "fgmodel.data.loader"
    assert {"build_loaders", "ImageDataset", "load_image"} <= set(dir(fgmodel.data))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        fgmodel.data.nope  # noqa: B018
    with pytest.raises(ImportError):
        from fgmodel.data import nope  # noqa: F401


_HEAVY = """
import sys
import fgmodel.config, fgmodel.data
assert fgmodel.data.head_size(fgmodel.config.RunConfig().replace(**{"data.task": "cub"})) == 200
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "timm"}))
fgmodel.data.build_loaders
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "timm"}))
"""


@pytest.mark.slow
def test_reading_the_task_table_loads_no_torch():
    out = subprocess.run([sys.executable, "-c", _HEAVY], capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert out.stdout.split("\n")[:2] == ["[]", "['torch']"]  # build_loaders brings torch in: the check can fail
