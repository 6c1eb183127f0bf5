"""The proxy that stands for the student's module in hidden tests.

Hidden tests call ``student.softmax(x)`` as if the module were local. Each call is
sent to the submission's sandboxed process (``student_process.py``), which runs the
student's code under time, memory, process and file-size limits, and sends back plain
tensors and numbers. Objects the student creates (``nn.Module`` instances) stay there;
the grader holds a ``RemoteObject`` handle and forwards calls, attribute reads and
backward passes. Per-call instruments (``autograder/sandboxed/instruments.py``) are asked
for by name: ``traced`` (shapes), ``saved_tensor_bytes``, ``compile_for_gpu``.
"""

from __future__ import annotations

from typing import Any

from autograder import kernel_source
from autograder.recorded import RecordedOps, RecordedShapes
from autograder.sandboxed.protocol import REMOTE_KEY
from autograder.student_errors import BadReturnValue, NotImplementedYet, StudentCrash, StudentException
from autograder.student_process import StudentProcess

MAX_DEPTH = 20  # nesting of lists, tuples and dicts in a reply
MAX_ITEMS = 100_000  # lists, tuples, dicts and their items in a reply


def _encode(value: Any) -> Any:
    """Arguments going to the worker: tensors detached (keeping requires_grad), handles by id."""
    import torch

    if isinstance(value, RemoteObject):
        return {REMOTE_KEY: value.handle}
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        items = [_encode(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (torch.dtype, torch.device)):
        raise TypeError("pass dtypes and devices to student code as strings")
    return value


def _decode(value: Any, owner: StudentModule, label: str) -> Any:
    """Values coming back: check they are plain and of sane size; turn handles into RemoteObjects.

    A forged reply can share one list many times over (``v = [v, v]`` sixty times is a
    few hundred bytes that unfolds to 2**60 items), so nesting, item count and repeats
    are bounded.
    """
    import torch

    seen: set[int] = set()
    budget = [MAX_ITEMS]

    def walk(item: Any, depth: int) -> Any:
        if isinstance(item, torch.Tensor):
            if type(item) is not torch.Tensor:
                raise BadReturnValue(f"{label} returned a tensor subclass; return plain torch.Tensor values")
            return item
        if item is None or type(item) in (bool, int, float, str):
            return item
        if not isinstance(item, (dict, list, tuple)):
            raise BadReturnValue(f"{label} returned a value of type {type(item).__name__}")
        budget[0] -= 1 + len(item)
        if depth > MAX_DEPTH or budget[0] < 0 or id(item) in seen:
            raise BadReturnValue(f"{label} returned a structure too deep or too large to check")
        seen.add(id(item))
        if isinstance(item, dict):
            if REMOTE_KEY in item:
                return RemoteObject(owner, item[REMOTE_KEY], str(item.get("type", "object")), label)
            return {key: walk(part, depth + 1) for key, part in item.items()}
        parts = [walk(part, depth + 1) for part in item]
        return tuple(parts) if isinstance(item, tuple) else parts

    return walk(value, 0)


class RemoteCallable:
    """A function or method of the student's code, called in the worker."""

    def __init__(self, owner: StudentModule, path: list[str], handle: int | None = None, label: str = "") -> None:
        self._owner = owner
        self._path = path
        self._handle = handle
        self._label = label or ".".join(path)

    def _request(
        self, op: str, timeout_s: float | None = None, *, measure_memory: bool = False, **extra: Any
    ) -> dict[str, Any]:
        message = {"op": op, "module": self._owner.module_name, "path": self._path, "handle": self._handle, **extra}
        reply = self._owner.process.request(message, self._label, timeout_s, measure_memory=measure_memory)
        if not reply["ok"]:
            self._owner.raise_for(reply, self._label)
        changed = reply.get("changed_inputs") or []
        if changed:
            where = ", ".join(str(item) for item in changed[:5]) if isinstance(changed, list) else "an argument"
            raise StudentException(
                f"{self._label} changed its input in place ({where}): the caller's tensors must stay as they were "
                "(use out-of-place ops, or work on x.clone())"
            )
        return reply

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply = self._request("call", args=_encode(list(args)), kwargs=_encode(kwargs))
        return _decode(reply["value"], self._owner, self._label)

    def vjp(self, *args: Any, grad_outputs: Any, trace_shapes: bool = False, **kwargs: Any) -> tuple[Any, list[Any]]:
        """Call, then backpropagate ``grad_outputs`` through the outputs in the worker.

        Returns ``(outputs, grads)`` where ``grads[i]`` is the gradient of the
        i-th positional argument (``None`` unless it had ``requires_grad``).
        With ``trace_shapes``, ``student.last_shapes`` then lists the shape of
        every tensor created during the call and the backward pass.
        """
        reply = self._request(
            "call",
            args=_encode(list(args)),
            kwargs=_encode(kwargs),
            grad_outputs=_encode(grad_outputs),
            instruments={"shapes": {}} if trace_shapes else {},
        )
        value = _decode(reply["value"], self._owner, self._label)
        return value, _decode(reply["grads"], self._owner, self._label)

    def measured(self, *args: Any, **kwargs: Any) -> Any:
        """Call, measuring the child's peak memory growth during the call: ``student.last_peak_bytes`` afterwards.

        Read by the grader from the kernel's accounting of the child process, so it counts
        every allocation (torch, NumPy, plain Python lists) and the student's code cannot
        change it. ``None`` where it cannot be measured (in-process exports).
        """
        reply = self._request("call", args=_encode(list(args)), kwargs=_encode(kwargs), measure_memory=True)
        return _decode(reply["value"], self._owner, self._label)

    def traced(self, *args: Any, **kwargs: Any) -> Any:
        """Call, recording the shape of every tensor created: ``student.last_shapes`` lists them afterwards."""
        reply = self._request("call", args=_encode(list(args)), kwargs=_encode(kwargs), instruments={"shapes": {}})
        return _decode(reply["value"], self._owner, self._label)

    def saved_tensor_bytes(self, *args: Any, **kwargs: Any) -> int:
        """Call with gradients on; the bytes of the tensors autograd saved for the backward pass.

        Counted by the engine (``sandboxed/instruments.py``, ``saved_bytes``), each storage once,
        the called module's parameters left out: the activation memory at the end of the forward
        pass, which gradient checkpointing shrinks. The call's value is not returned.
        """
        self._request(
            "call", args=_encode(list(args)), kwargs=_encode(kwargs), grad_enabled=True, instruments={"saved_bytes": {}}
        )
        reading = self._owner.process.last_readings.get("saved_bytes")
        if type(reading) is not int or reading < 0:
            raise StudentCrash(f"{self._label} sent back a malformed saved-tensor count")
        return reading

    def compile_for_gpu(self, capability: int, *args: Any, timeout_s: float = 120.0, **kwargs: Any) -> dict[str, Any]:
        """Call this function with Triton in GPU mode, compiling (never running) each kernel it launches.

        For ``sm_<capability>`` (80: A100, 90: H100), on a machine without a GPU. Two steps:
        the sandbox runs the wrapper in a fresh process (``autograder/sandboxed/triton_aot.py``),
        which reports the launches it saw; then the grader compiles those launches again from the
        kernels cut out of the student's file, where none of their code runs
        (``autograder/kernel_source.py``). Returns that second report, ``{"ok": True, "kernels":
        [{"name", "target", "shared", "mma"}]}``, or ``{"ok": False, "stage", "error"}``.
        """
        spec = {"capability": capability, "timeout_s": timeout_s}
        reply = self._request(
            "call",
            timeout_s + 10.0,
            args=_encode(list(args)),
            kwargs=_encode(kwargs),
            instruments={"gpu_compile": spec},
        )
        claimed = _decode(reply["value"], self._owner, self._label)
        if not isinstance(claimed, dict):
            raise StudentCrash(f"{self._label} sent back a malformed compile report")
        if claimed.get("ok") is not True:
            return claimed  # the wrapper failed in GPU mode: its error is the feedback (a forged failure only costs points)
        process = self._owner.process
        module = self._owner.module_name
        source = process.files.get(f"{module}.py")
        if source is None:
            return {"ok": False, "stage": "load", "error": f"{module}.py is not in your submission"}
        return kernel_source.compile_from_source(
            source,
            module,
            claimed.get("launches"),
            capability,
            timeout_s=timeout_s,
            info=process.sandbox,
            hidden=process.hidden_paths,
        )

    def fetch(self) -> Any:
        """Read this attribute's value (e.g. a parameter tensor) instead of calling it."""
        return _decode(self._request("getattr")["value"], self._owner, self._label)

    def __getattr__(self, name: str) -> RemoteCallable:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.attr(name)

    def attr(self, name: str) -> RemoteCallable:
        """The attribute ``name`` of this remote value, also for names the proxy uses (``attr("fetch")``)."""
        return RemoteCallable(self._owner, [*self._path, name], self._handle, f"{self._label}.{name}")


class RemoteObject(RemoteCallable):
    """An object the student's code created (e.g. an ``nn.Module``), living in the worker."""

    def __init__(self, owner: StudentModule, handle: int, type_name: str, label: str) -> None:
        super().__init__(owner, [], handle, f"{type_name} from {label}")
        self.handle = handle
        self.type_name = type_name

    def attr(self, name: str) -> RemoteCallable:
        return RemoteCallable(self._owner, [name], self.handle, f"{self.type_name}.{name}")

    def __repr__(self) -> str:
        return f"<remote {self.type_name} #{self.handle}>"


class StudentModule:
    """Stands for one of the student's files, e.g. ``attention.py``; see the module docstring."""

    def __init__(self, process: StudentProcess, module_name: str) -> None:
        self.process = process
        self.module_name = module_name

    def __getattr__(self, name: str) -> RemoteCallable:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteCallable(self, [name])

    @property
    def last_shapes(self) -> RecordedShapes:
        """Shapes of the tensors the last ``traced``/``vjp(..., trace_shapes=True)`` call created."""
        return self.process.last_shapes

    @property
    def last_peak_bytes(self) -> int | None:
        """Peak memory growth, in bytes, of the last ``measured`` call (None where it cannot be measured)."""
        return self.process.last_peak_bytes

    @property
    def last_used_global_rng(self) -> bool:
        """Whether the last call drew from or reseeded torch's global random generator (seeded code must not)."""
        return self.process.last_used_global_rng

    @property
    def last_ops(self) -> RecordedOps:
        """Names of the torch functions the last call ran (``exp``, ``softmax``, ``_softmax.default``)."""
        return self.process.last_ops

    def raise_for(self, reply: dict[str, Any], label: str) -> None:
        kind, message = reply.get("kind"), str(reply.get("message", ""))
        if kind == "not_implemented":
            raise NotImplementedYet(f"{label} is not implemented yet ({message})")
        if kind == "import_error":
            raise StudentException(f"could not import {self.module_name}.py: {message}")
        if kind == "missing":
            raise StudentException(message)
        if kind == "memory":
            self.process.count_failure(label)
            raise StudentException(f"{label} ran out of memory (the limit is {self.process.limits.memory_mb} MB)")
        raise StudentException(f"{label} raised {message}")
