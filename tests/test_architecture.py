"""The package's shape: no import cycles, nothing imports the command line, and a third model family
needs the model interface and nothing else."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bowlrp"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """Every bowlrp module ``module`` imports, wherever in the file (function-level imports count:
    a cycle hidden in a function is still a cycle), except under ``if TYPE_CHECKING``."""
    found: set[str] = set()
    base = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in modules or name.split(".")[0] in ("cli", "dnn")}


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    files = {(_module_name(p), p) for p in PACKAGE.rglob("*.py")}
    modules = {name for name, _ in files}
    return {name: _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
            for name, path in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def test_the_package_has_no_import_cycle(import_graph):
    assert _cycles(import_graph) == []


def test_the_cycle_finder_finds_a_planted_cycle(import_graph):
    planted = {k: set(v) for k, v in import_graph.items()}
    planted["bowlrp.errors"].add("bowlrp.pipeline")  # pipeline imports errors: now a cycle
    assert any("bowlrp.errors" in c and "bowlrp.pipeline" in c for c in _cycles(planted))


def test_nothing_outside_the_command_line_imports_it(import_graph):
    offenders = {module: sorted(t for t in targets if t == "bowlrp.cli" or t.startswith("bowlrp.cli.")
                                or t.split(".")[0] in ("cli", "dnn"))
                 for module, targets in import_graph.items()
                 if not module.startswith("bowlrp.cli") and module != "bowlrp.__main__"}  # the entry point
    assert {m: t for m, t in offenders.items() if t} == {}
