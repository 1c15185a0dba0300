"""No import cycles in fgmodel, spaces and search: every import counts, function-level and lazy ones too.

Python copes with many cycles at runtime, until a name is read before its module has
finished loading; the layout says imports go one way (``search -> spaces -> fgmodel``,
and the config type below the datasets), and this test holds every module to it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("fgmodel", "spaces", "search")

Graph = dict[str, dict[str, int]]  # module -> {module it imports: line of the first such import}


def _module_name(path: Path, top: Path) -> str:
    parts = path.relative_to(top).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterable[str]:
    """The modules of `known` that ``node`` loads: the longest known prefix of each name.

    ``from p import x`` is the submodule ``p.x`` when that exists, else ``p`` (a name in its
    ``__init__``); a package ``__init__``'s ``_LAZY`` table (name -> submodule) counts too.
    """

    def longest(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    if isinstance(node, ast.Import):
        yield from filter(None, (longest(alias.name) for alias in node.names))
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                anchor = anchor.rpartition(".")[0]
            base = f"{anchor}.{base}".rstrip(".")
        for alias in node.names:
            target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else longest(base)
            if target:
                yield target
    elif is_package and isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "_LAZY":
        yield from (f"{module}.{sub}" for sub in ast.literal_eval(node.value).values())


def import_graph(top: Path, packages: Iterable[str]) -> Graph:
    """Module -> the modules of `packages` (folders under `top`) it imports anywhere in its file.

    Imports under ``if TYPE_CHECKING:`` never run and are left out; an import of ``a.b.c``
    is an edge to ``a.b.c`` alone (its parents are already loading, as Python does it).
    """
    files = {_module_name(path, top): path for package in packages for path in sorted((top / package).rglob("*.py"))}
    known = set(files)
    graph: Graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = {id(n) for node in ast.walk(tree) if _is_type_checking(node) for n in ast.walk(node)}
        edges: dict[str, int] = {}
        for node in ast.walk(tree):
            if id(node) not in skipped:
                for target in _imported(node, module, path.name == "__init__.py", known):
                    if target != module:
                        edges[target] = min(edges.get(target, node.lineno), node.lineno)
        graph[module] = edges
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as the chain of modules (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the DFS path, "done" after
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, {})):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def chain(graph: Graph, cycle: list[str]) -> str:
    """``a -> b (a.py line 3) -> a (b.py line 9)``: each step with the line that imports it."""
    steps = [cycle[0]]
    for here, there in zip(cycle, cycle[1:]):
        steps.append(f"{there} ({here} line {graph[here][there]})")
    return " -> ".join(steps)


def assert_no_import_cycle(top: Path, packages: Iterable[str]) -> Graph:
    graph = import_graph(top, packages)
    cycle = find_cycle(graph)
    if cycle is not None:
        raise AssertionError(f"import cycle: {chain(graph, cycle)}")
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = assert_no_import_cycle(ROOT, PACKAGES)
    # the parser sees module-level, function-level and lazy imports in every package
    assert {"fgmodel.data.cub", "fgmodel.data.aircraft"} <= set(graph["fgmodel.data.cub_aircraft"])
    assert {"fgmodel.data.loader", "fgmodel.data.images", "fgmodel.data.demo"} <= set(graph["fgmodel.data"])
    assert "fgmodel.augment" in graph["fgmodel.data.loader"]  # inside build_loaders
    assert "search.report" in graph["search.run"]  # inside finish
    assert "fgmodel.fit" in graph["fgmodel.train"] and "fgmodel.config" in graph["spaces.default"]


def test_the_config_type_imports_nothing_of_the_project():
    """The base config sits below the dataset registry, which resolves a run's head size from it."""
    graph = import_graph(ROOT, PACKAGES)
    assert graph["fgmodel.config"] == {}
    assert "fgmodel.config" in graph["fgmodel.data._registry"]


def test_the_check_fails_on_a_planted_cycle_and_names_its_chain(tmp_path: Path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("_LAZY = {'thing': 'b'}\n")
    (pkg / "a.py").write_text("import os\n\n\ndef f():\n    from pkg import b\n")  # function-level: still an edge
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    import pkg\n"  # never runs: not an edge
                              "from .a import f\n")
    assert import_graph(tmp_path, ["pkg"]) == {"pkg": {"pkg.b": 1}, "pkg.a": {"pkg.b": 5}, "pkg.b": {"pkg.a": 4}}
    with pytest.raises(AssertionError, match=r"^import cycle: pkg\.b -> pkg\.a \(pkg\.b line 4\) -> "
                                             r"pkg\.b \(pkg\.a line 5\)$"):
        assert_no_import_cycle(tmp_path, ["pkg"])


def test_a_cycle_across_packages_is_found(tmp_path: Path):
    for package, other in (("low", "high"), ("high", "low")):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "mod.py").write_text(f"from {other}.mod import x\nx = 1\n")
    with pytest.raises(AssertionError, match=r"^import cycle: high\.mod -> low\.mod \(high\.mod line 1\) -> "
                                             r"high\.mod \(low\.mod line 1\)$"):
        assert_no_import_cycle(tmp_path, ["low", "high"])
