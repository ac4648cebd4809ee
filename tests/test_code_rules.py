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
