"""The engine's shape: its import layers hold (import-linter) and no module imports itself round a cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

from tests.helpers import REPO

LARGEST_ENGINE_MODULE = 350  # lines; split a module that grows past this


def test_the_import_layers_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.is_file() else [shutil.which("lint-imports") or "lint-imports"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_engine_module_imports_itself_round_a_cycle():
    graph = grimp.build_graph("autograder", include_external_packages=False)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_no_engine_module_is_too_large_to_hold_in_your_head():
    engine = REPO / "autograder"
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text().splitlines())
        for path in [*engine.glob("*.py"), *engine.glob("export/*.py"), *engine.glob("sandboxed/*.py")]
    }
    large = {name: lines for name, lines in sizes.items() if lines > LARGEST_ENGINE_MODULE}
    assert not large, f"engine modules over {LARGEST_ENGINE_MODULE} lines: {large}"
