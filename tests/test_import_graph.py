"""The project's import graph, read from the source (imports inside functions included).

Rules (issue 14): dependencies point one way (no cycle between modules), the library
(`pmr_stream`) imports nothing from training, tools, engines or tests, tests import no fixtures
from tools, and no module grows past about 600 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folder -> the name it is installed under (setup.cfg's package_dir): nothing generic.
PACKAGES = {
    "pmr_stream": "pmr_stream",
    "training": "pmr_training",
    "tools": "pmr_tools",
    "engines": "pmr_engines",
    "tests": "tests",
}
INSTALLED = {installed: folder for folder, installed in PACKAGES.items()}
MAX_LINES = 600


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _canonical(name: str) -> str:
    head, _, rest = name.partition(".")
    head = INSTALLED.get(head, head)
    return f"{head}.{rest}" if rest else head


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted name refers to (longest match), or None for third parties."""
    name = _canonical(name)
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: dict[str, Path]) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.depth = 0
        self.edges: list[Edge] = []

    def _add(self, name: str, line: int) -> None:
        target = _resolve(name, self.modules)
        if target is not None and target != self.module:
            self.edges.append(Edge(self.module, target, line, self.depth > 0))

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_If(self, node: ast.If) -> None:
        # `if TYPE_CHECKING:` imports never run: they are not dependencies at run time.
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        for alias in node.names:
            # `from pkg import sub` names a submodule when one exists, else a name in pkg.
            full = f"{prefix}.{alias.name}"
            self._add(full if _resolve(full, self.modules) == _canonical(full) else prefix, node.lineno)


def _edges() -> Iterator[Edge]:
    modules = _modules()
    for name, path in modules.items():
        collector = _Collector(name, path.name == "__init__.py", modules)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        yield from collector.edges


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_the_source() -> None:
    edges = list(_edges())
    # The reader must see both kinds of import, or the checks below would pass on nothing.
    assert any(e.in_function for e in edges)
    assert any(e.source.startswith("pmr_stream.") and e.target.startswith("pmr_stream.") for e in edges)
    assert any(e.source.startswith("tests.") for e in edges)


def test_no_import_cycle() -> None:
    cycles = _cycles(list(_edges()))
    assert not cycles, "import cycles (imports inside functions included): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_library_imports_only_itself() -> None:
    up = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in _edges()
        if e.source.split(".")[0] == "pmr_stream" and e.target.split(".")[0] != "pmr_stream"
    ]
    assert not up, "the library imports training/tools/engines/tests: " + "; ".join(up)


#: Rooms of the library and those they may not import (../shared/docs/ARCHITECTURE.md "Who may use whom").
FORBIDDEN = {
    "skeleton": "everything of ours",
    "config": "everything of ours but skeleton",
    "model": {"wire", "capture", "anonymizer", "sinks", "render", "backends", "offline", "demo", "cli"},
    "backends": {"wire", "capture", "anonymizer", "sinks", "render", "offline", "demo", "cli"},
    "wire": {"capture", "anonymizer", "sinks", "render", "backends", "model", "offline", "demo", "cli"},
    "capture": {"anonymizer", "sinks", "render", "backends", "model", "offline", "demo", "cli"},
    "sinks": {"anonymizer", "capture", "backends", "model", "offline", "demo", "cli"},
    "render": {"wire", "capture", "anonymizer", "sinks", "backends", "model", "offline", "demo", "cli"},
}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == "pmr_stream" and len(parts) > 1 else parts[0]


def test_each_room_imports_only_what_the_map_allows() -> None:
    bad = []
    for e in _edges():
        if not (e.source.startswith("pmr_stream.") and e.target.startswith("pmr_stream")):
            continue
        src, dst = _room(e.source), _room(e.target)
        rule = FORBIDDEN.get(src)
        if src == dst or rule is None:
            continue
        if rule == "everything of ours" or (rule == "everything of ours but skeleton" and dst != "skeleton"):
            bad.append(f"{e.source}:{e.line} imports {e.target}")
        elif isinstance(rule, set) and dst in rule:
            bad.append(f"{e.source}:{e.line} imports {e.target}")
    assert not bad, "; ".join(bad)


def test_nothing_but_tests_imports_tests() -> None:
    bad = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in _edges()
        if e.target.split(".")[0] == "tests" and e.source.split(".")[0] != "tests"
    ]
    assert not bad, "; ".join(bad)


def test_tests_take_no_fixtures_from_tools() -> None:
    from_tools = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in _edges()
        if e.source.startswith("tests")
        and e.target.split(".")[0] == "tools"
        # a test of a tool imports that tool: that is its subject, not a fixture
        and not e.source.split(".")[-1].startswith("test_")
    ]
    assert not from_tools, "; ".join(from_tools)


def test_no_module_over_the_size_limit() -> None:
    large = {
        name: n
        for name, path in _modules().items()
        if not name.startswith("tests") and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not large, f"modules over {MAX_LINES} lines: {large}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = [
        Edge("a", "b", 1, False),
        Edge("b", "c", 1, True),
        Edge("c", "a", 1, False),
        Edge("c", "d", 1, False),
    ]
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles(edges[1:]) == []
