"""The package's shape, as the README's layout section writes it: imports only go down its
layers, no import cycle anywhere, and rooms small enough to read (modules of at most 300 lines,
functions of at most 40). Every import counts: at the top, inside a function, or for type
checking only."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "harness"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40


@dataclass(frozen=True)
class Row:
    """One row of the README's layer table."""

    layer: int
    rooms: tuple[str, ...]
    """Dotted module prefixes (`harness.study`), or the package itself (`harness`)."""


def holds(room: str, module: str) -> bool:
    """Whether ``module`` is the room or inside it (the package's own room is itself only)."""
    return module == room or (room != "harness" and module.startswith(room + "."))


def layer_table(readme: Path) -> list[Row]:
    """The rows `| N | `room`, ... | why |` of the README's layout section."""
    rows = []
    for line in readme.read_text().split("## Project layout", 1)[1].splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if match:
            names = re.findall(r"`([\w.]+)`", match.group(2))
            rows.append(Row(int(match.group(1)), tuple(
                "harness" if n == "harness" else f"harness.{n}" for n in names)))
    return rows


def modules(root: Path) -> dict[str, Path]:
    """The package's modules by dotted name (a package by its own name)."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, wherever in it the import stands."""
    known = modules(root)
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _targets(node, known):
                if target != name:
                    edges[name].add(target)
    return edges


def _targets(node: ast.AST, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        named = [f"{node.module}.{alias.name}" for alias in node.names]
    else:
        return []
    found = []
    for name in named:
        while name and name not in known:  # `from harness.x import y`: module x, or x.y
            name = name.rpartition(".")[0]
        if name:
            found.append(name)
    return found


def row_of(module: str, rows: list[Row]) -> Row | None:
    """The row whose room holds ``module`` most closely."""
    best, size = None, -1
    for row in rows:
        for room in row.rooms:
            if holds(room, module) and len(room) > size:
                best, size = row, len(room)
    return best


def upward(edges: dict[str, set[str]], rows: list[Row]) -> list[str]:
    """Imports that break the layers: to a higher layer, or to another row of the same one."""
    broken = []
    for source, targets in sorted(edges.items()):
        here = row_of(source, rows)
        for target in sorted(targets):
            there = row_of(target, rows)
            if here is None or there is None or here == there:
                continue
            if there.layer >= here.layer:
                broken.append(f"{source} (layer {here.layer}) imports {target} "
                              f"(layer {there.layer})")
    return broken


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other in a loop (Tarjan's strongly connected
    components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def oversized(root: Path) -> list[str]:
    """Modules over `MAX_MODULE_LINES` lines and functions over `MAX_FUNCTION_LINES`."""
    found = []
    for name, path in sorted(modules(root).items()):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name}.{node.name}: {length} lines")
    return found


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    table = layer_table(ROOT / "README.md")
    assert table, "the README's layout section has no layer table"
    return table


def test_every_module_has_a_layer(rows: list[Row]) -> None:
    assert [m for m in modules(PACKAGE) if row_of(m, rows) is None] == []


def test_imports_only_go_down_the_layers(rows: list[Row]) -> None:
    assert upward(imports(PACKAGE), rows) == []


def test_no_modules_import_each_other_in_a_loop() -> None:
    assert cycles(imports(PACKAGE)) == []


def test_every_room_is_small_enough_to_read() -> None:
    assert oversized(PACKAGE) == []


def test_the_checks_find_an_upward_import_a_sibling_import_and_a_cycle(
        tmp_path: Path) -> None:
    """The same checks on a package made to break each rule once."""
    package = tmp_path / "harness"
    for name, text in {
        "__init__.py": "",
        "errors.py": "from harness.study.storage import open_storage\n",  # upward
        "study/__init__.py": "",
        "study/storage.py": "def open_storage() -> None:\n    from harness.trial import loop\n",
        "study/budget.py": "from harness.study.liveness import beat\n",  # a cycle ...
        "study/liveness.py": "from harness.study.budget import requeue\n",  # ... of two
        "trial/__init__.py": "",
        "trial/loop.py": "import harness\n" + "x = 1\n" * 301,  # too long
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    rows = [Row(1, ("harness", "harness.errors")), Row(5, ("harness.trial",)),
            Row(5, ("harness.study",))]
    edges = imports(package)
    assert upward(edges, rows) == [
        "harness.errors (layer 1) imports harness.study.storage (layer 5)",
        "harness.study.storage (layer 5) imports harness.trial.loop (layer 5)"]
    assert cycles(edges) == [["harness.study.budget", "harness.study.liveness"]]
    assert oversized(package) == ["harness.trial.loop: 302 lines"]


def test_the_readme_table_is_read_as_written(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n| 9 | `not`, `read` | before the section |\n## Project layout\n"
                      "| layer | rooms | why |\n| ---: | --- | --- |\n"
                      "| 1 | `harness`, `errors` | the base |\n| 3 | `space` | configs |\n")
    assert layer_table(readme) == [Row(1, ("harness", "harness.errors")),
                                   Row(3, ("harness.space",))]
