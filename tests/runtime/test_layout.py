"""The runtime's layout shows the design: it stands alone, its package file loads nothing, and no
module imports another that (directly or through others) imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in RUNTIME_DIR.rglob("*.py"):
        name = ".".join(path.relative_to(RUNTIME_DIR.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path) -> list[str]:
    """The modules a file imports when it is loaded (top-level statements; the names `from x import y` brings)."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the runtime modules loading it loads, parent packages included (Python runs them first)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target in _imports(path):
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                loaded = ".".join(parts[:end])
                if loaded in modules and loaded != name and not name.startswith(loaded + "."):
                    graph[name].add(loaded)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_runtime_module_imports_itself_back_through_others():
    graph = _graph()
    assert "runtime.models" in graph["runtime.staking.offers"] and "runtime.staking" in graph["runtime.models"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_runtime_module_imports_inside_a_function():
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = [sub for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))]
                assert not inner, f"{name}.{node.name} imports at call time (a hidden cycle)"


def test_the_runtime_stands_alone_and_its_package_file_loads_nothing():
    for name, path in _modules().items():
        roots = {target.split(".")[0] for target in _imports(path)}
        assert not roots & {"chain", "inference", "tests"}, f"{name} imports {roots & {'chain', 'inference', 'tests'}}"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, runtime.hashing; print(sorted(m for m in sys.modules if m.startswith('runtime')))"],
        capture_output=True, text=True, check=True, cwd=RUNTIME_DIR.parent,
    ).stdout
    assert loaded.strip() == "['runtime', 'runtime.hashing']"
