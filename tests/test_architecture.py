"""The layering ARCHITECTURE.md draws, checked on the source: which folder may import which,
no import cycles, and the heavy libraries kept where they belong."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "llmcli"

FOUNDATION = {"errors", "endings"}
# What each top-level part of llmcli may import (besides itself and __version__).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "endings": {"errors"},
    "config": FOUNDATION,
    "net": FOUNDATION,
    "wire": FOUNDATION | {"config", "net"},
    "storage": FOUNDATION | {"config", "wire"},
    "ui": FOUNDATION | {"storage", "wire"},
    "local": FOUNDATION | {"config", "wire", "storage"},
    "mock": FOUNDATION | {"net"},
    "embeddings": FOUNDATION | {"config", "wire", "storage", "ui"},
    "tools": FOUNDATION | {"config", "wire", "storage", "ui"},
    "chat": FOUNDATION | {"config", "net", "wire", "storage", "ui", "local"},
    "bench": FOUNDATION | {"config", "net", "wire", "ui"},
    "commands": FOUNDATION
    | {
        "config",
        "net",
        "wire",
        "storage",
        "ui",
        "local",
        "mock",
        "embeddings",
        "tools",
        "chat",
        "bench",
    },
    "cli": {"commands"},
    "__main__": {"cli"},
}
# Only these wire modules may be imported from ui/ and storage/: the pure data ones.
PURE_WIRE = {"llmcli.wire.events"}
# Only this config module may be imported from storage/: where the data directory is.
PATHS_ONLY = {"llmcli.config.paths"}
FORBIDDEN_LIBRARIES = {
    "ui": {"httpx"},
    "wire": {"rich", "prompt_toolkit", "typer"},
    "config": {"httpx", "rich", "prompt_toolkit", "typer"},
    "net": {"rich", "prompt_toolkit", "typer"},
    "storage": {"httpx", "rich", "prompt_toolkit", "typer"},
}
TYPER_ALLOWED = {"commands", "cli", "__main__"}
# Optional extras, each imported by one module only, inside its functions.
EXTRA_MODULES = {"dask": "llmcli.bench.cluster", "distributed": "llmcli.bench.cluster"}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def part(module: str) -> str:
    """``llmcli.wire.client`` -> ``wire``; ``llmcli.errors`` -> ``errors``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "llmcli"


def imports(path: Path, *, top_level_only: bool = False) -> Iterator[str]:
    """Every module ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = _top_level(tree) if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _top_level(tree: ast.Module) -> Iterator[ast.AST]:
    """Statements run at import time: not in functions, not under ``if TYPE_CHECKING``."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        yield node
        pending.extend(ast.iter_child_nodes(node))


KNOWN = {name for name, _ in modules()}


def resolve(target: str) -> str | None:
    """The llmcli module an import names (``from llmcli.wire import client``), if any."""
    if not target.startswith("llmcli"):
        return None
    while target and target not in KNOWN:
        target = target.rpartition(".")[0]
    return target or None


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda v: str(v))
def test_each_module_imports_only_the_layers_below_it(name: str, path: Path) -> None:
    source = part(name)
    if source == "llmcli":  # llmcli/__init__.py: the version only
        assert not [t for t in imports(path) if resolve(t) not in (None, "llmcli")]
        return
    assert source in ALLOWED, f"{source}/ is not in ARCHITECTURE.md's table"
    wrong = set()
    for target in imports(path):
        module = resolve(target)
        if module is None or module == "llmcli":
            continue
        dest = part(module)
        if dest != source and dest not in ALLOWED[source]:
            wrong.add(module)
        if source in ("ui", "storage") and dest == "wire" and module not in PURE_WIRE:
            wrong.add(module)
        if source == "storage" and dest == "config" and module not in PATHS_ONLY:
            wrong.add(module)
    assert not wrong, f"{name} imports above its layer: {sorted(wrong)}"


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda v: str(v))
def test_heavy_libraries_stay_where_they_belong(name: str, path: Path) -> None:
    source = part(name)
    libraries = {target.split(".")[0] for target in imports(path)}
    forbidden = FORBIDDEN_LIBRARIES.get(source, set())
    if source not in TYPER_ALLOWED:
        forbidden = forbidden | {"typer"}
    assert not libraries & forbidden, f"{name} imports {sorted(libraries & forbidden)}"
    extras = {lib for lib in libraries if lib in EXTRA_MODULES and EXTRA_MODULES[lib] != name}
    assert not extras, f"{name} imports {sorted(extras)}: only {EXTRA_MODULES} may"


@pytest.mark.parametrize("library", sorted(EXTRA_MODULES))
def test_an_optional_extra_is_imported_only_inside_functions(library: str) -> None:
    """A module that may import an extra does it where it is needed, never at import time
    (the extra may be missing, and ``llmcli --help`` must not pay for it)."""
    name = EXTRA_MODULES[library]
    path = PACKAGE.parent / (name.replace(".", "/") + ".py")
    assert library not in {t.split(".")[0] for t in imports(path, top_level_only=True)}


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for name, path in modules():
        targets = {resolve(t) for t in imports(path, top_level_only=True)}
        graph[name] = {t for t in targets if t is not None and t != name and t != "llmcli"}
    # A package's __init__ importing its own modules is a package, not a cycle.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                if not all(m.startswith(cycle[0] + ".") or m == cycle[0] for m in cycle):
                    cycles.append(cycle)
            elif state.get(target) is None:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_rule_catches_what_it_forbids(tmp_path: Path) -> None:
    """The checker itself: an upward import and a cycle are both found."""
    upward = tmp_path / "upward.py"
    upward.write_text("from llmcli.chat import session\n")
    assert "llmcli.chat.session" in {resolve(t) for t in imports(upward)}
    assert "chat" not in ALLOWED["wire"]
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    import llmcli.wire.client\n")
    assert list(imports(lazy, top_level_only=True)) == []
    assert "llmcli.wire.client" in set(imports(lazy))
