"""Imports go down the layers only, never in a circle (DESIGN.md, "Layout").

Every import statement of the project's packages is read with `ast`, those inside functions too
(a lazy import is still a dependency), and resolved to the project module it names. The module
graph must have no cycle, no module may import one of a higher layer, and device_scripts/ (copied
to the device) imports nothing of the project.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("profiler", "predictors", "search", "device_scripts")

# Lowest first. A module belongs to the layer of its longest matching prefix; a module may import
# its own layer and the layers below it. The command lines sit on top of everything.
LAYERS = [
    ("profiler", "profiler.errors", "profiler.limits", "profiler.files", "profiler.records",
     "profiler.console", "profiler.outputs"),   # plumbing (and the package's __version__)
    ("profiler.space",),
    ("profiler.tables",),
    ("profiler.build",),
    ("profiler.devices",),
    ("predictors",),
    ("search",),
    ("profiler.cli", "search.cli"),
]
ISOLATED = ("device_scripts",)  # imports nothing of the project, and nothing imports it


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, anywhere in the file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # `from PACKAGE import name` imports the submodule PACKAGE.name where there is one.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # import a.b.c of a module a.b's attribute
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS")
    return rank


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, targets in sorted(edges.items()):
        for target in sorted(targets):
            isolated = [p for p in ISOLATED if name.startswith(p) or target.startswith(p)]
            if isolated:
                if name.split(".")[0] != target.split(".")[0]:
                    bad.append(f"{name} -> {target} ({isolated[0]} imports nothing of the project)")
            elif layer(target) > layer(name):
                bad.append(f"{name} -> {target} (up a layer)")
    return bad


def test_every_module_is_in_a_layer():
    for name in graph():
        if not name.startswith(ISOLATED):
            layer(name)


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_imports_go_down_the_layers():
    assert upward(graph()) == []


@pytest.fixture
def old_layout(tmp_path):
    """The flat layout before the rooms: blocks -> blockspec -> kinds -> kinds.conv -> blocks
    (a lazy import inside a function)."""
    (tmp_path / "profiler" / "kinds").mkdir(parents=True)
    for package in PACKAGES[1:]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    files = {
        "profiler/__init__.py": "",
        "profiler/blocks.py": "import torch\nfrom .blockspec import BlockSpec\n",
        "profiler/blockspec.py": "from .kinds import KINDS\n",
        "profiler/kinds/__init__.py": "from . import conv\n",
        "profiler/kinds/conv.py": "def build(spec):\n    from ..blocks import conv_bn\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_lazy_import_circle_is_found(old_layout):
    assert cycles(graph(old_layout)) == [["profiler.blocks", "profiler.blockspec", "profiler.kinds",
                                          "profiler.kinds.conv"]]


def test_an_import_up_a_layer_is_found(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "profiler" / "space").mkdir()
    (tmp_path / "profiler" / "space" / "__init__.py").write_text("")
    (tmp_path / "profiler" / "space" / "blockspec.py").write_text(
        "def f():\n    import search.cli\n    from profiler.build import blocks\n")
    (tmp_path / "profiler" / "build").mkdir()
    (tmp_path / "profiler" / "build" / "__init__.py").write_text("")
    (tmp_path / "profiler" / "build" / "blocks.py").write_text("")
    (tmp_path / "search" / "cli.py").write_text("")
    (tmp_path / "device_scripts" / "pxbench.py").write_text("from profiler import errors\n")
    (tmp_path / "profiler" / "errors.py").write_text("")
    assert upward(graph(tmp_path)) == [
        "device_scripts.pxbench -> profiler.errors (device_scripts imports nothing of the project)",
        "profiler.space.blockspec -> profiler.build.blocks (up a layer)",
        "profiler.space.blockspec -> search.cli (up a layer)",
    ]
