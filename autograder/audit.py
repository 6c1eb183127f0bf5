"""Read a student's source, grader-side, for the escapes the in-sandbox instruments cannot see.

The op recorder (a ``TorchFunctionMode``) and the shape tracer (a ``TorchDispatchMode``) run in
the worker, beside the student's code. Code can hide from them or change what they report:
``@torch.jit.script``, ``torch._C.DisableTorchFunction()``, NumPy instead of torch, or reaching
the recorder itself (``sys.modules``, ``gc``, a frame's globals) to patch it. This module reads
the files before they run, in the grader's own process, and lists every construct that opens
such a door. A test that rests on an instrument (``assert_no_forbidden_ops``,
``assert_no_tensor_with_dims``) fails when the submission has any, naming the line: the check
only vouches for code it can read. Nothing else is affected: the code still runs and every
other test grades it as usual.

The rules are an allowlist where one is possible: modules a week's file may import, the
``os``/``io`` names it may use. Dynamic lookups (``getattr`` with a computed name, ``eval``,
``__dict__``, ``globals()``) are escapes because they make the rest unreadable.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ALLOWED_MODULES = frozenset(
    {
        "__future__",
        "abc",
        "bisect",
        "collections",
        "collections.abc",
        "contextlib",
        "copy",
        "csv",
        "dataclasses",
        "enum",
        "functools",
        "heapq",
        "io",
        "itertools",
        "json",
        "math",
        "matplotlib",
        "matplotlib.pyplot",
        "numbers",
        "os",
        "os.path",
        "pathlib",
        "random",
        "re",
        "statistics",
        "string",
        "textwrap",
        "time",
        "torch",
        "torch.cuda",
        "torch.nn",
        "torch.nn.functional",
        "torch.nn.init",
        "torch.optim",
        "torch.optim.lr_scheduler",
        "torch.utils.checkpoint",
        "triton",
        "triton.language",
        "typing",
        "warnings",
    }
)
# ``os`` and ``io`` give raw file descriptors (the worker's reply pipe among them) and processes.
ALLOWED_NAMES_OF = {
    "os": frozenset(
        {
            "PathLike",
            "cpu_count",
            "curdir",
            "devnull",
            "environ",
            "extsep",
            "fspath",
            "getcwd",
            "getenv",
            "linesep",
            "listdir",
            "makedirs",
            "mkdir",
            "pardir",
            "path",
            "remove",
            "rename",
            "replace",
            "rmdir",
            "scandir",
            "sep",
            "stat",
            "unlink",
            "walk",
        }
    ),
    "io": frozenset({"BytesIO", "StringIO", "SEEK_SET", "SEEK_CUR", "SEEK_END"}),
}
# Attribute names that lead out of what the instruments see, on whatever object they are read.
ESCAPE_ATTRIBUTES = {
    "jit": "TorchScript (torch.jit) runs below the op recorder",
    "_C": "torch._C is below the op recorder (DisableTorchFunction, mode stacks)",
    "overrides": "torch.overrides controls the op recorder",
    "_python_dispatch": "torch.utils._python_dispatch controls the shape tracer",
    "library": "torch.library registers ops the recorder does not know",
    "_dynamo": "torch._dynamo compiles code below the op recorder",
    "_inductor": "torch._inductor compiles code below the op recorder",
    "compiler": "torch.compiler compiles code below the op recorder",
    "fx": "torch.fx rewrites code the recorder then does not see",
    "_functorch": "torch._functorch runs below the op recorder",
    "cpp_extension": "C++ extensions run below the op recorder",
    "DisableTorchFunction": "it switches the op recorder off",
    "DisableTorchFunctionSubclass": "it switches the op recorder off",
    "_disabled_torch_function_impl": "it switches the op recorder off",
    "f_back": "frames reach the grader's instruments",
    "f_globals": "frames reach the grader's instruments",
    "f_locals": "frames reach the grader's instruments",
    "f_builtins": "frames reach the grader's instruments",
    "f_code": "frames reach the grader's instruments",
    "tb_frame": "frames reach the grader's instruments",
    "tb_next": "frames reach the grader's instruments",
    "gi_frame": "frames reach the grader's instruments",
    "cr_frame": "frames reach the grader's instruments",
    "ag_frame": "frames reach the grader's instruments",
}
ALLOWED_DUNDERS = frozenset(
    {
        "__init__",
        "__name__",
        "__qualname__",
        "__doc__",
        "__class__",
        "__len__",
        "__call__",
        "__repr__",
        "__str__",
        "__iter__",
        "__next__",
        "__getitem__",
        "__setitem__",
        "__contains__",
        "__eq__",
        "__hash__",
        "__version__",
        "__annotations__",
    }
)
DYNAMIC_BUILTINS = {
    "getattr": "a computed attribute name",
    "setattr": "a computed attribute name",
    "delattr": "a computed attribute name",
    "hasattr": "a computed attribute name",
    "vars": "a namespace as a dict",
    "globals": "a namespace as a dict",
    "locals": "a namespace as a dict",
    "eval": "code from a string",
    "exec": "code from a string",
    "compile": "code from a string",
    "__import__": "an import by a computed name",
    "__builtins__": "the builtins as a namespace",
    "breakpoint": "a debugger hook",
}
ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
INSTRUMENT_HOOKS = frozenset({"__torch_function__", "__torch_dispatch__"})


@dataclass(frozen=True)
class Escape:
    """One construct in a student's file the in-sandbox instruments cannot vouch for."""

    file: str
    line: int
    what: str

    def describe(self) -> str:
        return f"{self.file} line {self.line}: {self.what}"


class _Reader(ast.NodeVisitor):
    def __init__(self, file: str, local_modules: frozenset[str]) -> None:
        self.file = file
        self.local = local_modules
        self.found: list[Escape] = []
        self.aliases: dict[str, str] = {}  # a name bound by ``import os as o`` -> "os"

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append(Escape(self.file, getattr(node, "lineno", 0), what))

    def allowed_module(self, name: str) -> bool:
        return name in ALLOWED_MODULES or name.split(".")[0] in self.local

    # -- imports ----------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self.allowed_module(alias.name):
                self.flag(node, f"imports {alias.name}, which the op and shape checks cannot see into")
            root = alias.name.split(".")[0]
            if root in ALLOWED_NAMES_OF or root == "triton":
                self.aliases[alias.asname or root] = root if alias.asname is None or "." not in alias.name else ""
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.flag(node, "a relative import")
        elif not self.allowed_module(module):
            self.flag(node, f"imports from {module}, which the op and shape checks cannot see into")
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if alias.name == "*":
                self.flag(node, f"`from {module} import *` hides which names it binds")
            elif module in ALLOWED_NAMES_OF and alias.name not in ALLOWED_NAMES_OF[module]:
                self.flag(node, f"imports {full}: raw files and processes reach past the grader's checks")
            elif alias.name in ESCAPE_ATTRIBUTES and module != "triton":
                self.flag(node, f"imports {full}: {ESCAPE_ATTRIBUTES[alias.name]}")
            elif alias.name in DYNAMIC_BUILTINS or (alias.name.startswith("__") and alias.name not in ALLOWED_DUNDERS):
                self.flag(node, f"imports {full}")
            elif module.startswith("torch") and full not in ALLOWED_MODULES and alias.name.startswith("_"):
                self.flag(node, f"imports {full}, a private part of torch below the op recorder")
        self.generic_visit(node)

    # -- attribute reads --------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attribute(node, node.attr, node.value)
        self.generic_visit(node)

    def check_attribute(self, node: ast.AST, attr: str, base: ast.AST | None) -> None:
        if attr == "jit" and isinstance(base, ast.Name) and self.aliases.get(base.id) == "triton":
            return  # @triton.jit: a Triton kernel, which the worker runs in Triton's interpreter
        if attr in ESCAPE_ATTRIBUTES:
            self.flag(node, f"uses .{attr}: {ESCAPE_ATTRIBUTES[attr]}")
        elif attr.startswith("__") and attr.endswith("__") and attr not in ALLOWED_DUNDERS:
            self.flag(node, f"reads .{attr}, which reaches past what the grader's checks see")
        elif attr == "compile" and not (isinstance(base, ast.Name) and base.id == "re"):
            self.flag(node, "calls a compile function: compiled code runs below the op recorder")
        elif isinstance(base, ast.Name) and self.aliases.get(base.id) in ALLOWED_NAMES_OF:
            module = self.aliases[base.id]
            if attr not in ALLOWED_NAMES_OF[module]:
                self.flag(node, f"uses {module}.{attr}: raw files and processes reach past the grader's checks")

    # -- names, calls, definitions ----------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DYNAMIC_BUILTINS and not getattr(node, "_literal_call", False):
            self.flag(node, f"uses {node.id} ({DYNAMIC_BUILTINS[node.id]}), which the grader cannot read")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_BUILTINS and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                func._literal_call = True  # type: ignore[attr-defined]  # a literal name reads like .name
                self.check_attribute(node, name.value, node.args[0])
        if isinstance(func, ast.Name) and func.id == "open" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, int):
                self.flag(node, "opens a file descriptor by number")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in INSTRUMENT_HOOKS:
            self.flag(node, f"defines {node.name}, which takes over the grader's instruments")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and ("/proc/" in node.value or node.value.rstrip("/") == "/proc"):
            self.flag(node, "names /proc, where the process's own memory and limits are")


def audit_source(source: str | bytes, file: str, local_modules: Iterable[str] = ()) -> list[Escape]:
    """Every escape in one file's source; a file that does not parse has none (it fails to import anyway)."""
    try:
        tree = ast.parse(source, filename=file)
    except (SyntaxError, ValueError):
        return []
    reader = _Reader(file, frozenset(local_modules))
    reader.visit(tree)
    return sorted(set(reader.found), key=lambda escape: (escape.file, escape.line, escape.what))


def audit_files(files: Mapping[str, bytes], local_modules: Iterable[str] = ()) -> tuple[Escape, ...]:
    """The escapes in several files (``{"attention.py": source}``); ``local_modules`` may be imported."""
    local = {name.removesuffix(".py") for name in files} | set(local_modules)
    found: list[Escape] = []
    for name, data in sorted(files.items()):
        if name.endswith(".py"):
            found.extend(audit_source(data, name, local))
    return tuple(found)
