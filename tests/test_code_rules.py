"""Rules of the code base that a reviewer would otherwise have to remember (design.md's layout, asyncio on 3.11)."""

from __future__ import annotations

import ast
import re
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
    "daemon.dialogue", "daemon.call", "daemon.web", "daemon.gpu", "daemon.composition", "daemon.tools", "daemon.entry",
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


# The bus contract (channels/bus_contract/) spells every topic and command verb once; nothing else does.
CONTRACT = REPO / "channels" / "bus_contract"
BUS_CALLS = {"register_command", "unregister", "request", "publish_state", "publish_event", "subscribe", "carries",
             "command"}
TOPIC_NAMES = ("suffix", "topic")  # a value compared with one of these is a topic
# Owned by another engineer while this rule came in: these verbs move to channels/bus_contract/verbs.py with them.
_PLACEHOLDER = "\0"  # where an f-string's value goes: matches any level


def _contract_strings() -> tuple[list[list[str]], list[list[str]], set[str], set[str]]:
    """(multi-level topics, multi-level verbs, one-level topic words, one-level verbs), as the contract spells them."""
    from channels.bus_contract import topics, verbs

    def constants(module: object) -> set[str]:
        return {v for k, v in vars(module).items() if k.isupper() and not k.startswith("_") and isinstance(v, str)}

    topic_words, verb_words = constants(topics), constants(verbs)
    topic_paths = [s.split("/") for s in sorted(topic_words) if "/" in s]
    verb_paths = [s.split("/") for s in sorted(verb_words) if "/" in s]
    return topic_paths, verb_paths, {w for w in topic_words if "/" not in w}, {w for w in verb_words if "/" not in w}


def _token_levels(text: str) -> list[tuple[bool, list[str]]]:
    """The topic-like tokens of a string: (a path from the root, like a URL's, and its levels); an f-string's value
    is a level of its own."""
    found = []
    for token in re.findall(r"[^\s'\"(),:;=<>\[\]|`]+", text):
        rooted = token.startswith("/")
        token = re.sub(f"(?<!/){_PLACEHOLDER}", f"/{_PLACEHOLDER}", token)
        token = re.sub(f"{_PLACEHOLDER}(?!/)", f"{_PLACEHOLDER}/", token)
        found.append((rooted, token.strip("/").split("/")))
    return found


def _family_prefix(text: str, paths: list[list[str]]) -> bool:
    """A string that is just the head of contract topics, like ``"engines/"`` or ``"call/"`` (a prefix to match on)."""
    if not text.endswith("/") or len(_token_levels(text)) != 1 or text != text.strip():
        return False
    levels = _token_levels(text)[0][1]
    return any(len(levels) < len(p) and _spells(levels + p[len(levels):], 0, p) for p in paths)


def _spells(levels: list[str], at: int, path: list[str]) -> bool:
    """Whether ``levels`` from ``at`` spell the contract's ``path`` (its first level literally; ``+``/``#`` as MQTT)."""
    for i, want in enumerate(path):
        if want == "#":
            return at + i < len(levels)
        if at + i >= len(levels):
            return False
        have = levels[at + i]
        if i == 0 and have != want:
            return False
        if have != _PLACEHOLDER and want != "+" and have != want:
            return False
    return True


def _strings(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """Every string of the code with its node: constants, and f-strings with their values as placeholders; no docstrings."""
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found: list[tuple[ast.AST, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(p.value if isinstance(p, ast.Constant) else _PLACEHOLDER for p in node.values)
            found.append((node, text))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and id(node) not in inside_fstrings):
            found.append((node, node.value))
    return found


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return ""


def _bus_context_words(tree: ast.AST) -> list[ast.Constant]:
    """String constants used as a topic or verb: a bus call's argument, compared with a topic/verb, a state key."""
    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        candidates: list[ast.AST] = []
        if isinstance(node, ast.Call):
            callee = _name_of(node.func)
            if callee in BUS_CALLS:
                candidates += [*node.args, *(k.value for k in node.keywords)]
            if callee == "get" and isinstance(node.func, ast.Attribute) and _name_of(node.func.value) == "state":
                candidates += node.args[:1]  # the retained state, keyed by topic suffix
        elif isinstance(node, ast.Subscript) and _name_of(node.value) == "state":
            candidates.append(node.slice)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(any(word in _name_of(side).lower() for word in TOPIC_NAMES) for side in sides):
                for side in sides:
                    candidates += side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
        found += [c for c in candidates if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return found


def _topic_literals(path: Path) -> list[str]:
    """Where a module spells a contract topic or verb itself (``path:line: text``)."""
    topic_paths, verb_paths, topic_words, verb_words = _contract_strings()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wrong = []
    for node, text in _strings(tree):
        for rooted, levels in _token_levels(text):
            paths = topic_paths if rooted else topic_paths + verb_paths  # "/calls/<id>" is the web page's URL
            spelled = any(_spells(levels, at, p) for p in paths for at in range(len(levels)))
            built = _PLACEHOLDER in levels and bool(topic_words & set(levels))  # f"{base}status", f"reply/{id}"
            if spelled or built or _family_prefix(text, topic_paths + verb_paths):
                wrong.append(f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}: {text!r}")
                break
    for node in _bus_context_words(tree):
        if node.value in topic_words | verb_words:
            wrong.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    return wrong


def test_topics_and_verbs_are_spelled_only_in_the_bus_contract() -> None:
    wrong = [
        line
        for package in PACKAGES
        for path in _modules(package)
        if CONTRACT not in path.parents
        for line in _topic_literals(path)
    ]
    assert not wrong, ("spell topics and command verbs with channels/bus_contract/ (topics.py, verbs.py):\n"
                       + "\n".join(sorted(set(wrong))))


def test_call_state_and_call_event_have_one_writer() -> None:
    """``daemon/call/announcer.py`` publishes them for every call (``Bus.call_event`` is for tools and tests)."""
    writers = {"daemon/call/announcer.py", "daemon/bus/connection.py"}
    wrong = []
    for package in PACKAGES:
        for path in _modules(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or _name_of(node.func) not in ("publish_state", "publish_event",
                                                                                 "call_event"):
                    continue
                names = {_name_of(arg) for arg in node.args[:1]}
                raw = isinstance(node.func, ast.Attribute) and node.func.attr == "call_event"
                if (names & {"CALL_STATE", "CALL_EVENT"} or raw) and str(
                        path.relative_to(REPO)) not in writers:
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not wrong, "only daemon/call/announcer.py writes call/state and call/event:\n" + "\n".join(wrong)
