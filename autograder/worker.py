"""The untrusted side: runs student code on request, in its own (sandboxed) process.

This file is copied into the sandbox and run as a script, so it imports only the
standard library and torch, never the rest of the grader. It speaks a tiny
protocol on two pipes (see ``autograder.protocol``): each frame is an 8-byte
big-endian length followed by a ``torch.save`` payload, which the receiving side
reads with ``torch.load(weights_only=True)`` so no side ever unpickles code.

Nothing this process says is trusted: the grader re-checks every value it gets
back (type, dtype, shape, finiteness) and does all comparisons itself.
"""

from __future__ import annotations

import importlib
import io
import os
import resource
import struct
import sys
import traceback
import types
from typing import Any

HEADER = struct.Struct(">Q")
REMOTE_KEY = "__remote__"


def _set_limits(memory_mb: int, max_processes: int, max_file_mb: int, cpu_seconds: int) -> None:
    """Lower soft and hard limits together, so student code cannot raise them again."""
    limits = {
        resource.RLIMIT_AS: memory_mb * 2**20,
        resource.RLIMIT_NPROC: max_processes,
        resource.RLIMIT_FSIZE: max_file_mb * 2**20,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_CPU: cpu_seconds,
    }
    for which, value in limits.items():
        if value <= 0:
            continue
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


class Channel:
    """Length-prefixed torch.save frames over two private file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.reader = os.fdopen(read_fd, "rb", buffering=0)
        self.write_fd = write_fd

    def recv(self) -> Any:
        import torch

        header = self._read_exact(HEADER.size)
        if header is None:
            return None
        (size,) = HEADER.unpack(header)
        payload = self._read_exact(size)
        if payload is None:
            return None
        return torch.load(io.BytesIO(payload), weights_only=True)

    def send(self, message: Any) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(message, buffer)
        data = HEADER.pack(buffer.tell()) + buffer.getvalue()
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def _read_exact(self, size: int) -> bytes | None:
        chunks, remaining = [], size
        while remaining:
            chunk = self.reader.read(remaining)
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


class OpRecorder:
    """Records the name of every torch function that runs while it is active.

    A ``TorchFunctionMode`` sees ``torch.softmax``, ``F.softmax``, ``Tensor.softmax``
    and ``torch.ops.aten._softmax.default`` alike (as ``softmax``, ``_softmax.default``
    ...). It is a teaching check, not a security boundary: the worker is untrusted.
    """

    def __init__(self) -> None:
        from torch.overrides import TorchFunctionMode

        ops: set[str] = set()
        self.ops = ops

        class FunctionMode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                ops.add(getattr(func, "__name__", str(func)))
                return func(*args, **(kwargs or {}))

        self._mode = FunctionMode()

    def __enter__(self) -> OpRecorder:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(None, None, None)


class Worker:
    """Holds the student's modules and the objects they create, by handle."""

    def __init__(self, submission_dir: str, module_names: list[str]) -> None:
        self.submission_dir = submission_dir
        self.modules: dict[str, Any] = {}
        self.import_errors: dict[str, str] = {}
        self.objects: dict[int, Any] = {}
        self.next_handle = 1
        sys.path.insert(0, submission_dir)
        for name in module_names:
            try:
                self.modules[name] = importlib.import_module(name)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt too
                self.import_errors[name] = _describe_exception(exc, submission_dir)

    # -- value conversion -------------------------------------------------
    def to_plain(self, value: Any, depth: int = 0) -> Any:
        """Turn a student's return value into plain data, or a handle for objects."""
        import torch

        if depth > 20:
            raise TypeError("return value is nested too deeply")
        if isinstance(value, torch.Tensor):
            tensor = value.detach()
            if type(tensor) is not torch.Tensor:
                tensor = tensor.as_subclass(torch.Tensor)
            return tensor.clone()
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, (torch.dtype, torch.device)):
            return str(value)
        if isinstance(value, (tuple, list)):
            items = [self.to_plain(item, depth + 1) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, dict):
            return {str(key): self.to_plain(item, depth + 1) for key, item in value.items()}
        if isinstance(value, types.GeneratorType):
            return [self.to_plain(item, depth + 1) for item in value]
        handle = self.next_handle
        self.next_handle += 1
        self.objects[handle] = value
        return {REMOTE_KEY: handle, "type": type(value).__name__}

    def from_plain(self, value: Any) -> Any:
        if isinstance(value, dict):
            if REMOTE_KEY in value:
                return self.objects[value[REMOTE_KEY]]
            return {key: self.from_plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.from_plain(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.from_plain(item) for item in value)
        return value

    # -- requests ---------------------------------------------------------
    def resolve(self, request: dict[str, Any]) -> Any:
        module_name = request["module"]
        if module_name in self.import_errors:
            raise _ImportFailed(self.import_errors[module_name])
        if request.get("handle"):
            target = self.objects[request["handle"]]
        else:
            target = self.modules[module_name]
        for name in request["path"]:
            if not hasattr(target, name):
                where = f"{module_name}.py" if target is self.modules[module_name] else type(target).__name__
                raise _Missing(f"{where} has no attribute `{name}`")
            target = getattr(target, name)
        return target

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        import torch

        op = request["op"]
        if op == "release":
            self.objects.pop(request["handle"], None)
            return {"ok": True, "value": None, "ops": []}
        recorder = OpRecorder()
        try:
            target = self.resolve(request)
            if op == "getattr":
                return {"ok": True, "value": self.to_plain(target), "ops": []}
            args = self.from_plain(request.get("args", []))
            kwargs = self.from_plain(request.get("kwargs", {}))
            grad_outputs = request.get("grad_outputs")
            with torch.set_grad_enabled(grad_outputs is not None or bool(request.get("grad_enabled"))):
                with recorder:
                    result = target(*args, **kwargs)
                    grads = None
                    if grad_outputs is not None:
                        grads = self._backward(result, grad_outputs, args)
            reply = {"ok": True, "value": self.to_plain(result), "ops": sorted(recorder.ops)}
            if grads is not None:
                reply["grads"] = grads
            return reply
        except BaseException as exc:
            kind = "not_implemented" if isinstance(exc, NotImplementedError) else "error"
            if isinstance(exc, _ImportFailed):
                kind = "import_error"
            elif isinstance(exc, _Missing):
                kind = "missing"
            elif isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
                kind = "memory"
            return {
                "ok": False,
                "kind": kind,
                "message": _describe_exception(exc, self.submission_dir),
                "ops": sorted(recorder.ops),
            }

    def _backward(self, result: Any, grad_outputs: Any, args: list[Any]) -> list[Any]:
        import torch

        outputs = result if isinstance(result, (tuple, list)) else (result,)
        grads_in = grad_outputs if isinstance(grad_outputs, (tuple, list)) else (grad_outputs,)
        pairs = [
            (out, grad)
            for out, grad in zip(outputs, grads_in, strict=False)
            if grad is not None and isinstance(out, torch.Tensor) and out.requires_grad
        ]
        if not pairs:
            raise RuntimeError("none of the outputs that need a gradient depends on the inputs (no grad_fn)")
        torch.autograd.backward([out for out, _ in pairs], [grad for _, grad in pairs])
        return [
            self.to_plain(arg.grad) if isinstance(arg, torch.Tensor) and arg.requires_grad else None for arg in args
        ]


class _ImportFailed(Exception):
    pass


class _Missing(Exception):
    pass


def _describe_exception(exc: BaseException, submission_dir: str) -> str:
    """One readable line plus where in the student's files it happened."""
    if isinstance(exc, (_ImportFailed, _Missing)):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"your code called sys.exit({exc.code!r})"
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError):
        return f"SyntaxError in {os.path.basename(exc.filename or '?')} line {exc.lineno}: {exc.msg}"
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename.startswith(submission_dir)]
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)} line {last.lineno}: {(last.line or '').strip()})"
    return text[:2000]


def main() -> None:
    submission_dir, modules = sys.argv[1], sys.argv[2].split(",")
    memory_mb, max_processes, max_file_mb, cpu_seconds = (int(x) for x in sys.argv[3:7])
    # Keep the protocol on private descriptors; anything the student prints goes to stderr.
    read_fd, write_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    channel = Channel(read_fd, write_fd)

    import torch

    torch.set_num_threads(1)
    _set_limits(memory_mb, max_processes, max_file_mb, cpu_seconds)
    worker = Worker(submission_dir, modules)
    channel.send({"ready": True, "import_errors": worker.import_errors})
    while True:
        request = channel.recv()
        if request is None:
            break
        reply = worker.handle(request)
        try:
            channel.send(reply)
        except Exception as exc:  # an unpicklable value slipped through
            channel.send({"ok": False, "kind": "error", "message": f"could not send the result back: {exc}", "ops": []})
    os._exit(0)


if __name__ == "__main__":
    main()
