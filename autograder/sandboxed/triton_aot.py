"""Compile a student's Triton kernels for a real GPU on a machine without one, in two steps.

Triton's CPU interpreter runs a kernel as NumPy code and checks nothing the GPU
compiler does: ``tl.dot`` operands of one dtype and tiles of at least 16, what the
tensor cores take, shared memory per block. A kernel can pass every interpreter
test and not compile for a GPU. Triton compiles ahead of time for a named target
with no GPU present (its wheel ships ``ptxas``).

1. ``python triton_aot.py MODULE.py FUNCTION ARGS.pt CAPABILITY`` (started by the sandbox
   in a fresh process in the sandbox, *without* ``TRITON_INTERPRET``) makes
   ``torch.cuda.is_available()`` say True, points Triton at a stand-in driver for
   ``sm_<capability>``, and calls the student's wrapper with the given CPU tensors. Each
   kernel launch is recorded through Triton's cache hook, with exactly the tiles, warps
   and stages the wrapper picks on a GPU, as Triton's own specialization JSON, and
   skipped. Last line of stdout: ``{"ok": true, "launches": [...]}`` or ``{"ok": false,
   "stage": "load" | "wrapper" | "none", "error": ...}``.
2. That is the student's process speaking, so the grader compiles nothing on its word:
   ``python triton_aot.py --source KERNELS.py LAUNCHES.json CAPABILITY`` compiles those
   launches in a process where no student code runs. ``KERNELS.py`` is what the grader
   cut out of the student's file (``autograder/kernel_source.py``): the ``@triton.jit``
   functions and literal constants; the kernels' bodies only go through Triton's
   compiler. Last line: ``{"ok": true, "kernels": [{"name", "target", "shared", "mma"}]}``
   or ``{"ok": false, "stage": "load" | "compile" | "none", "error": ...}``.

It imports nothing from the course: it runs where only the student's files are.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from typing import Any

MAX_ERROR_CHARS = 1500


def _short(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text if len(text) <= MAX_ERROR_CHARS else "..." + text[-MAX_ERROR_CHARS:]


def _load(name: str, path: str) -> Any:
    """Import the file at ``path`` as module ``name`` (the name Triton's launches refer to)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _target_only(capability: int) -> None:
    """Point Triton at a stand-in driver for ``sm_<capability>``: it compiles, with no GPU behind it."""
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.runtime import driver

    class TargetOnlyDriver:
        """What ``JITFunction.run`` asks the active driver for, with no GPU behind it."""

        def get_current_target(self) -> Any:
            return GPUTarget("cuda", capability, 32)

        def get_current_device(self) -> int:
            return 0

        def get_current_stream(self, device: int | None = None) -> int:
            return 0

        def get_active_torch_device(self) -> Any:
            return torch.device("cpu")

    driver.set_active(TargetOnlyDriver())


def _describe(name: str, kernel: Any, capability: int) -> dict[str, Any]:
    return {
        "name": name,
        "target": f"sm_{capability}",
        "shared": int(kernel.metadata.shared),
        "mma": "mma" in kernel.asm.get("ptx", ""),
    }


def record_launches(module_path: str, function: str, args_path: str, capability: int) -> dict[str, Any]:
    """Run the student's wrapper in GPU mode and record each kernel launch, compiling none of them."""
    import torch

    torch.cuda.is_available = lambda: True  # the student's module picks its GPU path
    from triton import knobs

    _target_only(capability)
    launches: list[str] = []

    def record(*, compile: dict[str, Any], **_: Any) -> bool:
        launches.append(str(compile["specialization_data"]))
        return True  # skip compiling: the launch returns None, as a warmup's result goes unused

    knobs.runtime.jit_cache_hook = record
    folder = os.path.dirname(os.path.abspath(module_path))
    sys.path.insert(0, folder)  # the student's other files, as when the worker loads them
    name = os.path.basename(module_path).removesuffix(".py")
    try:
        module = _load(name, module_path)
    except Exception as exc:
        return {"ok": False, "stage": "load", "error": _short(exc)}
    args, kwargs = torch.load(args_path, weights_only=True)
    try:
        getattr(module, function)(*args, **kwargs)
    except Exception as exc:
        if not launches:
            return {"ok": False, "stage": "wrapper", "error": _short(exc)}
        # Kernels were launched; what failed afterwards is the wrapper using results no kernel computed.
    if not launches:
        return {"ok": False, "stage": "none", "error": f"{function} launched no Triton kernel"}
    return {"ok": True, "launches": launches}


def compile_launches(kernels_path: str, launches_path: str, capability: int) -> dict[str, Any]:
    """Compile each launch (Triton's specialization JSON) of the kernels in ``kernels_path``, running nothing else."""
    from triton.runtime.jit import JITFunction

    _target_only(capability)
    name = os.path.basename(kernels_path).removesuffix(".py")  # the student's module name: launches name it
    try:
        module = _load(name, kernels_path)
    except Exception as exc:
        return {"ok": False, "stage": "load", "error": _short(exc)}
    with open(launches_path) as handle:
        launches = json.load(handle)
    compiled = []
    for data in launches:
        full_name = str(json.loads(data).get("name", ""))
        kernel_name = full_name.rsplit(".", 1)[-1]
        kernel = getattr(module, kernel_name, None)
        if not isinstance(kernel, JITFunction) or full_name != f"{name}.{kernel_name}":
            return {"ok": False, "stage": "none", "error": f"no @triton.jit kernel {kernel_name} in {name}.py"}
        try:
            compiled.append(_describe(kernel_name, kernel.preload(data), capability))
        except Exception as exc:
            return {"ok": False, "stage": "compile", "error": f"{kernel_name}: {_short(exc)}"}
    if not compiled:
        return {"ok": False, "stage": "none", "error": "no Triton kernel was launched"}
    return {"ok": True, "kernels": compiled}


if __name__ == "__main__":
    try:
        if sys.argv[1] == "--source":
            report = compile_launches(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        else:
            report = record_launches(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
    except Exception as exc:  # Triton missing or changed: say so instead of a traceback
        report = {"ok": False, "stage": "load", "error": _short(exc)}
    sys.stdout.flush()
    print("\n" + json.dumps(report))
