"""The task table: filled by each loader module's decorator, free of import cycles, readable without torch."""

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import fgmodel.data
from fgmodel.config import ConfigError, RunConfig
from fgmodel.data import NUM_CLASSES, TaskData, _registry, cub, get_task, load_task, register_task, task_names

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
        RunConfig().replace(**{"data.task": "aircraft"})


def test_a_registered_task_reaches_the_config(monkeypatch):
    monkeypatch.setattr(_registry, "TASKS", dict(_registry.TASKS))  # the table as it was, after the test

    @register_task("toy", num_classes=3, description="three classes")
    def load(root) -> TaskData:
        return TaskData([], [], ["a", "b", "c"])

    assert load_task("toy", ".").classes == ["a", "b", "c"] and task_names()[-1] == "toy"
    assert RunConfig().replace(**{"data.task": "toy"}).num_classes == 3  # NUM_CLASSES is a live view
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


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports anywhere, function bodies included.

    ``from package import x`` is an edge to the submodule x when x.py exists, else to the
    package itself (its __init__); imports under ``if TYPE_CHECKING:`` never run. The names
    an ``__init__`` loads lazily (its ``_LAZY`` table: name -> submodule) are edges too.
    """
    graph: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        module = package if path.stem == "__init__" else f"{package}.{path.stem}"
        tree = ast.parse(path.read_text(), str(path))
        skipped = {id(n) for node in ast.walk(tree) if _is_type_checking(node) for n in ast.walk(node)}
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package if node.level else node.module or ""
                if node.level and node.module:
                    base = f"{package}.{node.module}"
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    edges.add(sub if base == package and (folder / f"{alias.name}.py").is_file() else base)
            elif path.stem == "__init__" and isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "_LAZY":
                edges.update(f"{package}.{sub}" for sub in ast.literal_eval(node.value).values())
        graph[module] = {e for e in edges if (e == package or e.startswith(package + ".")) and e != module}
    return graph


def test_no_module_of_fgmodel_data_imports_one_that_imports_it_back():
    graph = _import_graph(Path(fgmodel.data.__file__).parent, "fgmodel.data")
    # the parser sees module-level, function-level and lazy imports
    assert {"fgmodel.data.cub", "fgmodel.data.aircraft"} <= graph["fgmodel.data.cub_aircraft"]
    assert {"fgmodel.data.loader", "fgmodel.data.images", "fgmodel.data.demo"} <= graph["fgmodel.data"]
    assert "fgmodel.data._registry" in graph["fgmodel.data.download"]
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_the_cycle_check_sees_a_function_level_cycle(tmp_path: Path):
    (tmp_path / "__init__.py").write_text("_LAZY = {'thing': 'b'}\n")
    (tmp_path / "a.py").write_text("def f():\n    from pkg import b\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                   "if TYPE_CHECKING:\n    import pkg\n"  # never runs: not an edge
                                   "from pkg.a import f\n")
    graph = _import_graph(tmp_path, "pkg")
    assert graph == {"pkg": {"pkg.b"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()


_HEAVY = """
import sys
import fgmodel.config, fgmodel.data
fgmodel.config.RunConfig().replace(**{"data.task": "cub"})
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "timm"}))
fgmodel.data.build_loaders
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "timm"}))
"""


@pytest.mark.slow
def test_reading_the_task_table_loads_no_torch():
    out = subprocess.run([sys.executable, "-c", _HEAVY], capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert out.stdout.split("\n")[:2] == ["[]", "['torch']"]  # build_loaders brings torch in: the check can fail
