"""Cut a student's Triton kernels out of their file, grader-side, so they compile where none of their code runs.

Week 09's GPU compile check must not rest on a report from the student's process (it could
print any report it likes). The grader compiles the launches again from source instead
(``triton_aot.py --source``). What it compiles is this module's output: the file's
top-level ``@triton.jit`` functions, its imports from ``triton``, and constants that are
literals, with every decorator but ``triton.jit`` dropped (``autotune`` and ``heuristics``
chose a configuration already, recorded in the launch) and only literal defaults and
annotations kept. Executing it defines functions and binds literals; the kernels' bodies
go to Triton's compiler, which turns them into GPU code and runs none of them.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from autograder import sandbox

AOT_SCRIPT = Path(__file__).parent / "sandboxed" / "triton_aot.py"
MAX_LAUNCHES = 32
MAX_LAUNCH_CHARS = 64 * 1024
COMPILE_MEMORY_MB = 6144  # Triton's compiler and ptxas, for one kernel at a time
# The most dynamic shared memory one block may use, in bytes, by compute capability (CUDA programming guide):
# A100 (sm_80) and H100 (sm_90). The hidden, public and project tests of week 09 all read it here.
SHARED_MEMORY_PER_BLOCK = {80: 163 * 1024, 90: 227 * 1024}

HEADER = ["import triton", "import triton.language as tl"]
TRITON_MODULES = ("triton", "triton.language")
PLAIN_ANNOTATIONS = frozenset({"int", "float", "bool", "str"})


def _literal(node: ast.AST | None) -> bool:
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


class _Kernels:
    def __init__(self) -> None:
        self.triton_names: set[str] = {"triton"}  # names bound to the triton module
        self.language_names: set[str] = {"tl"}  # names bound to triton.language

    def is_language(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.language_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "language"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.triton_names
        )

    def is_constexpr(self, node: ast.AST) -> bool:
        """``tl.constexpr`` (or ``triton.language.constexpr``), the annotation of a compile-time argument."""
        return isinstance(node, ast.Attribute) and node.attr == "constexpr" and self.is_language(node.value)

    def is_jit(self, node: ast.AST) -> bool:
        """``@triton.jit`` or ``@triton.jit(literal options)``."""
        if isinstance(node, ast.Call):
            return not node.args and all(_literal(k.value) for k in node.keywords) and self.is_jit(node.func)
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "jit"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.triton_names
        )

    def imports(self, node: ast.stmt) -> ast.stmt | None:
        if isinstance(node, ast.Import):
            kept = [alias for alias in node.names if alias.name in TRITON_MODULES]
            for alias in kept:
                if alias.name == "triton":
                    self.triton_names.add(alias.asname or "triton")
                elif alias.asname:
                    self.language_names.add(alias.asname)
            return ast.Import(names=kept) if kept else None
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in TRITON_MODULES:
            names = [alias for alias in node.names if alias.name != "*"]
            for alias in names:
                if node.module == "triton" and alias.name == "language":
                    self.language_names.add(alias.asname or "language")
            return ast.ImportFrom(module=node.module, names=names, level=0) if names else None
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            return node
        return None

    def constant(self, node: ast.stmt) -> ast.stmt | None:
        value = getattr(node, "value", None)
        if isinstance(value, ast.Call) and self.is_constexpr(value.func):
            literal = len(value.args) == 1 and not value.keywords and _literal(value.args[0])
        else:
            literal = value is not None and _literal(value)
        if isinstance(node, ast.Assign) and literal and all(isinstance(t, ast.Name) for t in node.targets):
            return node
        if isinstance(node, ast.AnnAssign) and literal and isinstance(node.target, ast.Name):
            if not (self.is_constexpr(node.annotation) or _plain(node.annotation)):
                node.annotation = ast.Name(id="object", ctx=ast.Load())
            return node
        return None

    def kernel(self, node: ast.stmt) -> ast.stmt | None:
        if not isinstance(node, ast.FunctionDef):
            return None
        jit = [decorator for decorator in node.decorator_list if self.is_jit(decorator)]
        if not jit:
            return None
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if args.vararg or args.kwarg or not all(_literal(d) for d in [*args.defaults, *args.kw_defaults]):
            return None  # Triton takes neither; a computed default would run student code here
        for arg in every:
            annotation = arg.annotation
            if annotation is not None and not (self.is_constexpr(annotation) or _plain(annotation)):
                arg.annotation = None
        node.decorator_list = [jit[0]]
        node.returns = None
        return node


def _plain(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Name)
        and node.id in PLAIN_ANNOTATIONS
        or (isinstance(node, ast.Constant) and isinstance(node.value, str))
    )


def kernels_only(source: str | bytes) -> str:
    """The kernels of ``source`` and what they need, as Python source that executes nothing of the student's.

    Raises ``SyntaxError`` when the file does not parse.
    """
    tree = ast.parse(source)
    cutter = _Kernels()
    future: list[ast.stmt] = []
    body: list[ast.stmt] = []
    for node in tree.body:
        for keep in (cutter.imports, cutter.constant, cutter.kernel):
            kept = keep(node)
            if kept is not None:
                (future if isinstance(kept, ast.ImportFrom) and kept.module == "__future__" else body).append(kept)
                break
    module = ast.Module(body=[*future, *ast.parse("\n".join(HEADER)).body, *body], type_ignores=[])
    return ast.unparse(ast.fix_missing_locations(module)) + "\n"


def compile_from_source(
    source: bytes,
    module: str,
    launches: object,
    capability: int,
    *,
    timeout_s: float,
    info: sandbox.SandboxInfo,
    hidden: list[Path],
) -> dict[str, Any]:
    """Compile ``launches`` (Triton's specialization JSON, as the student's process reported them) from ``source``.

    In a fresh process (in bubblewrap when grading uses it) that loads only
    ``kernels_only(source)``: the report it prints is the grader's, not the student's.
    Returns ``{"ok": True, "kernels": [...]}`` or ``{"ok": False, "stage", "error"}``.
    """
    if (
        not isinstance(launches, list)
        or not 0 < len(launches) <= MAX_LAUNCHES
        or not all(isinstance(item, str) and len(item) <= MAX_LAUNCH_CHARS for item in launches)
    ):
        return {"ok": False, "stage": "none", "error": "the compile run reported no kernel launch the grader can redo"}
    try:
        kernels = kernels_only(source)
    except (SyntaxError, ValueError) as exc:
        return {"ok": False, "stage": "load", "error": f"{module}.py does not parse: {exc}"}
    job = Path(tempfile.mkdtemp(prefix="course-kernels-"))
    try:
        os.chmod(job, 0o755)
        (job / f"{module}.py").write_text(kernels)
        (job / "launches.json").write_text(json.dumps(launches))
        shutil.copyfile(AOT_SCRIPT, job / AOT_SCRIPT.name)
        for path in job.iterdir():
            os.chmod(path, 0o644)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TRITON_DEFAULT_FP_FUSION": "1"}
        if info.kind == "bwrap":
            inside = "/tmp/grader"  # where bwrap_command shows ``job``
            args = ["--source", f"{inside}/{module}.py", f"{inside}/launches.json", str(int(capability))]
            command = sandbox.bwrap_command(
                [f"{inside}/{AOT_SCRIPT.name}", *args], workdir=job, hidden=[*hidden, job.parent], tmp_size_mb=512,
                switches_uid=False,
            )  # fmt: skip
            env.update(HOME="/tmp", TRITON_CACHE_DIR="/tmp/triton-cache")
        else:
            args = ["--source", str(job / f"{module}.py"), str(job / "launches.json"), str(int(capability))]
            command = [sys.executable, "-I", "-B", str(job / AOT_SCRIPT.name), *args]
            env.update(HOME=str(job), TRITON_CACHE_DIR=str(job / "cache"))
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=env,
                cwd=job,
                timeout=timeout_s,
                preexec_fn=_limit_memory,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "stage": "compile", "error": f"compiling took over {timeout_s:g} s"}
    finally:
        shutil.rmtree(job, ignore_errors=True)
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if not isinstance(report, dict) or not isinstance(report.get("ok"), bool):
        tail = (done.stderr or done.stdout)[-800:]
        return {"ok": False, "stage": "compile", "error": f"the compiler exited with {done.returncode}: {tail}"}
    return report


def _limit_memory() -> None:
    limit = COMPILE_MEMORY_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
