"""Rules of the code base that a reviewer would otherwise have to remember (design.md's layout, asyncio on 3.11)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("daemon", "drivers", "engines", "channels", "config")
# design.md: "Dependencies point one way."
MAY_NOT_IMPORT = {
    "channels": {"daemon"},
    "drivers": {"daemon", "channels", "engines"},
    "engines": {"daemon", "channels", "drivers"},
    "config": {"daemon", "channels", "drivers", "engines"},
}


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_dependencies_point_one_way(package: str) -> None:
    forbidden = MAY_NOT_IMPORT[package]
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in _modules(package)
        for line, name in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if name.split(".")[0] in forbidden
    ]
    assert not wrong, f"{package} may not import {', '.join(sorted(forbidden))}:\n" + "\n".join(wrong)


def test_no_asyncio_wait_for() -> None:
    """3.11's ``wait_for`` loses a cancellation that lands as its awaitable completes; ``asyncio.timeout`` does not.

    A lost cancellation leaves a loop running and its owner's stop hanging (CI saw the bus do it).
    """
    wrong = []
    for package in PACKAGES:
        for path in _modules(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                called = node.func if isinstance(node, ast.Call) else None
                if (isinstance(called, ast.Attribute) and called.attr == "wait_for"
                        and isinstance(called.value, ast.Name) and called.value.id == "asyncio"):
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno}")
                if isinstance(node, ast.ImportFrom) and node.module == "asyncio" and any(
                        a.name == "wait_for" for a in node.names):
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not wrong, "use `async with asyncio.timeout(t): await x` instead of asyncio.wait_for:\n" + "\n".join(wrong)


# The daemon's rooms, lowest first: a room may import only the rooms before it (daemon/__init__.py).
DAEMON_LAYERS = (
    "daemon.runtime", "daemon.bus", "daemon.engine_host", "daemon.modem", "daemon.records", "daemon.voices",
    "daemon.dialogue", "daemon.call", "daemon.web", "daemon.composition", "daemon.tools", "daemon.entry",
)
# The top-level modules: the composition root sits under the owner's tools, the entry points over them.
DAEMON_TOP = {"daemon.app": "daemon.composition", "daemon.channel_host": "daemon.composition",
              "daemon.main": "daemon.entry", "daemon.cli": "daemon.entry", "daemon": "daemon.composition"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _product_graph() -> dict[str, set[str]]:
    """Every product module and the product modules it imports (at any depth: lazy and TYPE_CHECKING too)."""
    paths = {_module_name(p): p for package in PACKAGES for p in _modules(package)}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                candidates = [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or a name in base
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in paths:  # a name imported from a module -> the module
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def _room(module: str) -> str | None:
    if not module.startswith("daemon"):
        return None
    if module in DAEMON_TOP:
        return DAEMON_TOP[module]
    return next(room for room in DAEMON_LAYERS if module == room or module.startswith(room + "."))


def test_daemon_rooms_import_only_rooms_below() -> None:
    wrong = []
    for module, targets in _product_graph().items():
        room = _room(module)
        for target in targets:
            other = _room(target)
            if room and other and DAEMON_LAYERS.index(other) > DAEMON_LAYERS.index(room):
                wrong.append(f"{module} ({room}) imports {target} ({other})")
    assert not wrong, "a room imports a room above it:\n" + "\n".join(sorted(wrong))


def test_daemon_top_holds_only_entry_points_and_the_composition_root() -> None:
    top = sorted(p.name for p in (REPO / "daemon").glob("*.py"))
    assert len(top) <= 5, top
    assert all(f"daemon.{name[:-3]}" in DAEMON_TOP or name == "__init__.py" for name in top), top


def test_rooms_stay_small_and_say_what_they_do() -> None:
    for init in (REPO / "daemon").rglob("__init__.py"):
        room = init.parent
        modules = [p for p in room.glob("*.py") if p.name != "__init__.py"]
        if room != REPO / "daemon":
            assert len(modules) <= 10, f"{room.relative_to(REPO)} has {len(modules)} modules: split it"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc) > 80, f"{init.relative_to(REPO)} needs a docstring: what the room does and its path"


def test_product_import_graph_has_no_cycle() -> None:
    graph = _product_graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]) if target in path else target)
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
