"""Per-call instruments: what the grader may ask to be recorded while the student's code runs.

A call message names the instruments it wants (``{"instruments": {"shapes": {}}}``); each
is an entry in ``INSTRUMENTS``, registered with ``@instrument`` like a pytest plugin. The
worker opens every named instrument around the call and puts each one's ``reading()`` in
the reply under its name. ``ops`` is always on. An instrument with ``replaces_call``
(``gpu_compile``) runs the call its own way and its ``run`` result is the reply's value.

These run beside the student's code, so they are teaching checks, not a security
boundary: the grader reads the submission's source itself (``autograder/audit.py``)
for what could hide from them, and measures memory from outside (``/proc``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, ClassVar

MAX_TRACED_SHAPES = 5000


class Instrument:
    """One per-call instrument: a context manager around the call, then a plain-data ``reading``."""

    name: ClassVar[str]
    replaces_call: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any], target: Any, submission_dir: str) -> None:
        self.options = options
        self.target = target
        self.submission_dir = submission_dir

    def __enter__(self) -> Instrument:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def reading(self) -> Any:
        return None

    def run(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError


INSTRUMENTS: dict[str, type[Instrument]] = {}


def instrument(cls: type[Instrument]) -> type[Instrument]:
    """Register an instrument under its ``name``."""
    INSTRUMENTS[cls.name] = cls
    return cls


def make(requested: Any, target: Any, submission_dir: str) -> list[Instrument]:
    """The instruments a call asks for (``{name: options}``), ``ops`` always first; unknown names are an error."""
    wanted = {"ops": {}, **(requested if isinstance(requested, dict) else {})}
    unknown = sorted(str(name) for name in wanted if name not in INSTRUMENTS)
    if unknown:
        raise ValueError(f"no such instrument: {', '.join(unknown)}")
    return [INSTRUMENTS[name](dict(options or {}), target, submission_dir) for name, options in wanted.items()]


@instrument
class OpRecorder(Instrument):
    """Records the name of every torch function that runs while it is active.

    A ``TorchFunctionMode`` sees ``torch.softmax``, ``F.softmax``, ``Tensor.softmax``
    and ``torch.ops.aten._softmax.default`` alike (as ``softmax``, ``_softmax.default``
    ...).
    """

    name = "ops"

    def __init__(self, options: dict[str, Any] | None = None, target: Any = None, submission_dir: str = "") -> None:
        super().__init__(options or {}, target, submission_dir)
        from torch.overrides import TorchFunctionMode

        ops: set[str] = set()
        self.ops = ops

        class FunctionMode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                ops.add(getattr(func, "__name__", str(func)))
                return func(*args, **(kwargs or {}))

        self._mode = FunctionMode()

    def __enter__(self) -> OpRecorder:
        self._mode.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(None, None, None)  # type: ignore[no-untyped-call]

    def reading(self) -> list[str]:
        return sorted(self.ops)


@instrument
class ShapeRecorder(Instrument):
    """Records the shape of every tensor an aten op creates while it is active (forward and backward).

    A ``TorchDispatchMode`` sees the ops below autograd, so a ``(T, T)`` score
    matrix shows up however it was made (``matmul``, ``einsum``, ``bmm``, a
    backward formula). Used by tests that check memory use, e.g. that a "flash"
    attention never materialises the full attention matrix. Opt-in per call: it
    slows every op down.
    """

    name = "shapes"

    def __init__(self, options: dict[str, Any] | None = None, target: Any = None, submission_dir: str = "") -> None:
        super().__init__(options or {}, target, submission_dir)
        from torch.utils._python_dispatch import TorchDispatchMode

        shapes: set[tuple[int, ...]] = set()
        self.shapes = shapes

        class DispatchMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                import torch

                out = func(*args, **(kwargs or {}))
                for value in out if isinstance(out, (tuple, list)) else (out,):
                    if isinstance(value, torch.Tensor) and len(shapes) < MAX_TRACED_SHAPES:
                        shapes.add(tuple(value.shape))
                return out

        self._mode = DispatchMode()  # type: ignore[no-untyped-call]

    def __enter__(self) -> ShapeRecorder:
        self._mode.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(None, None, None)  # type: ignore[no-untyped-call]

    def reading(self) -> list[list[int]]:
        return sorted(list(shape) for shape in self.shapes)


@instrument
class SavedTensorBytes(Instrument):
    """Bytes of the tensors autograd saves for the backward pass during the call (parameters excluded).

    ``torch.autograd.graph.saved_tensors_hooks`` sees every tensor saved for backward; each
    storage counts once. The parameters of the called module (the target itself, or the
    module a called method belongs to) are left out: what is left is the activation memory
    at the end of the forward pass, which gradient checkpointing shrinks.
    """

    name = "saved_bytes"

    def __enter__(self) -> SavedTensorBytes:
        import torch

        owner = getattr(self.target, "__self__", self.target)
        parameters = owner.parameters() if isinstance(owner, torch.nn.Module) else ()
        self._parameters = {p.untyped_storage().data_ptr() for p in parameters}
        self._saved: dict[int, int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in self._parameters:
                self._saved[storage.data_ptr()] = storage.nbytes()
            return tensor

        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(None, None, None)

    def reading(self) -> int:
        return int(sum(self._saved.values()))


@instrument
class GpuCompile(Instrument):
    """Record the kernel launches the target makes in GPU mode for ``sm_<capability>``, in a fresh process.

    The target must be a top-level function of one of the student's files. The reading is
    ``triton_aot.py``'s report of the launches, which the grader compiles itself
    (``autograder/kernel_source.py``); in-process (the otter and nbgrader exports) there is
    no file to compile from, and the report says ``"skipped"``.
    """

    name = "gpu_compile"
    replaces_call = True

    def run(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        import torch

        capability, timeout_s = int(self.options["capability"]), float(self.options["timeout_s"])
        if not self.submission_dir:
            return {"ok": False, "stage": "skipped", "error": "no GPU compile check in-process"}
        target = self.target
        module = sys.modules.get(getattr(target, "__module__", ""), None)
        path = getattr(module, "__file__", None)
        name = getattr(target, "__name__", "")
        if path is None or getattr(module, name, None) is not target:
            return {"ok": False, "stage": "load", "error": "not a top-level function of your file"}
        scratch = os.path.abspath(f"gpu-compile-{capability}")
        os.makedirs(scratch, exist_ok=True)
        args_path = os.path.join(scratch, "args.pt")
        torch.save((args, kwargs), args_path)
        env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
        env.update(HOME=scratch, TRITON_CACHE_DIR=os.path.join(scratch, "cache"), TRITON_DEFAULT_FP_FUSION="1")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "triton_aot.py")
        command = [sys.executable, "-I", "-B", script, path, name, args_path, str(capability)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=scratch, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"ok": False, "stage": "compile", "error": f"compiling took over {timeout_s:g} s"}
        lines = done.stdout.strip().splitlines()
        try:
            report = json.loads(lines[-1]) if lines else None
        except ValueError:
            report = None
        if not isinstance(report, dict):
            tail = (done.stderr or done.stdout)[-800:]
            return {"ok": False, "stage": "load", "error": f"the compile process exited with {done.returncode}: {tail}"}
        return report
