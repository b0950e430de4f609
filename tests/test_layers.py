"""Imports flow one way: no cycles, and no import against the layer order written in docs/ARCHITECTURE.md.

Every module of the package is parsed with ``ast`` (nothing is imported); ``from``/``import`` statements
anywhere in a module count — inside functions too — except those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sdnas_deploy"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(sub) for sub in ast.walk(node))
    return skip


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports (submodules named in ``from pkg import sub`` included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target in known:
                found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def layer_order() -> list[tuple[str, list[str]]]:
    """``[(layer, [top-level names])]`` from the ```layers block of docs/ARCHITECTURE.md, lowest first."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(r"```layers\n(.*?)```", text, re.S)
    assert match, "docs/ARCHITECTURE.md must hold a ```layers block"
    rows = []
    for line in match.group(1).strip().splitlines():
        layer, _, names = line.partition(":")
        rows.append((layer.strip(), names.split()))
    return rows


def layer_of(module: str, order: list[tuple[str, list[str]]]) -> int:
    """Index of the layer a module belongs to (by its first name below ``sdnas_deploy``)."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    for index, (_, names) in enumerate(order):
        if head in names:
            return index
    raise AssertionError(f"{module}: its top-level name {head!r} is in no layer of docs/ARCHITECTURE.md")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_there_are_no_import_cycles() -> None:
    assert find_cycles(import_graph()) == []


def test_imports_follow_the_layer_order() -> None:
    order = layer_order()
    wrong = []
    for module, targets in import_graph().items():
        mine = layer_of(module, order)
        for target in targets:
            theirs = layer_of(target, order)
            if theirs > mine:
                wrong.append(f"{module} ({order[mine][0]}) imports {target} ({order[theirs][0]})")
    assert wrong == []


def test_the_checker_sees_cycles_and_wrong_arrows() -> None:
    """The checker itself: a hand-made cycle is found, and every package module sits in a layer."""
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    order = layer_order()
    assert [name for name, _ in order][:2] == ["core", "data"] and order[-1][0] == "cli"
    graph = import_graph()
    assert len(graph) > 100 and "sdnas_deploy.spaces.base" in graph["sdnas_deploy.spaces.darts.supernet"]
    for module in graph:
        layer_of(module, order)


@pytest.mark.parametrize("space_module", ["sdnas_deploy.spaces.darts", "sdnas_deploy.spaces.mbconv"])
def test_no_module_outside_a_space_imports_its_folder(space_module: str) -> None:
    """Only the space itself and the registry (``spaces/__init__``) import a space's folder."""
    outside = [m for m, targets in import_graph().items()
               if not m.startswith(space_module) and m != "sdnas_deploy.spaces"
               and any(t == space_module or t.startswith(space_module + ".") for t in targets)]
    assert outside == []
