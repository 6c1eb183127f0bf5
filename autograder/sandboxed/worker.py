"""Holds one submission's modules and the objects they create, and runs the grader's requests.

A request names a module, a path of attributes (``["GPT", "forward"]``) or an object's
handle, and for a call its arguments and the instruments to run (``instruments.py``). The
reply carries plain data only: tensors, numbers, strings and lists or dicts of them; any
other object stays here and goes back as a handle (``{REMOTE_KEY: n, "type": name}``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
import types
from typing import Any

from .instruments import OpRecorder, make
from .protocol import MAX_REPLY_BYTES, REMOTE_KEY


class Worker:
    """Holds the student's modules and the objects they create, by handle."""

    def __init__(self, submission_dir: str, module_names: list[str]) -> None:
        self.submission_dir = submission_dir
        self.modules: dict[str, Any] = {}
        self.import_errors: dict[str, str] = {}
        self.objects: dict[int, Any] = {}
        self.next_handle = 1
        self.reply_bytes = 0
        sys.path.insert(0, submission_dir)
        for name in module_names:
            if not os.path.isfile(os.path.join(submission_dir, name + ".py")):
                self.import_errors[name] = "the file is not in your submission"
                continue
            try:
                self.modules[name] = importlib.import_module(name)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt too
                self.import_errors[name] = _describe_exception(exc, submission_dir)

    @classmethod
    def from_modules(cls, modules: dict[str, Any]) -> Worker:
        """A worker over modules that are already loaded (the in-process runner of the otter and nbgrader exports)."""
        worker = cls.__new__(cls)
        worker.submission_dir = ""
        worker.modules = dict(modules)
        worker.import_errors = {}
        worker.objects = {}
        worker.next_handle = 1
        worker.reply_bytes = 0
        return worker

    # -- value conversion -------------------------------------------------
    def to_plain(self, value: Any, depth: int = 0) -> Any:
        """Turn a student's return value into plain data, or a handle for objects."""
        import torch

        if depth > 20:
            raise TypeError("return value is nested too deeply")
        if isinstance(value, torch.Tensor):
            tensor = value.detach()
            self.reply_bytes += tensor.numel() * tensor.element_size()
            if self.reply_bytes > MAX_REPLY_BYTES:
                raise ValueError(f"returned more than {MAX_REPLY_BYTES >> 20} MB of data")
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
        """Run one request (``call``, ``getattr`` or ``release``); the reply says how it went, never raises."""
        import torch

        op = request["op"]
        if op == "release":
            self.objects.pop(request["handle"], None)
            return {"ok": True, "value": None, "instruments": {}}
        ops = OpRecorder()
        try:
            target = self.resolve(request)
            if op == "getattr":
                return {"ok": True, "value": self.to_plain(target), "instruments": {}}
            args = self.from_plain(request.get("args", []))
            kwargs = self.from_plain(request.get("kwargs", {}))
            grad_outputs = request.get("grad_outputs")
            instruments = [ops, *make(request.get("instruments"), target, self.submission_dir)[1:]]
            runner = next((each for each in instruments if each.replaces_call), None)
            if runner is not None:
                return {"ok": True, "value": runner.run(args, kwargs), "instruments": {}}
            inputs = _snapshot(args, kwargs)  # the caller's tensors, to tell if the call changed them
            rng_state = torch.random.get_rng_state()
            with torch.set_grad_enabled(grad_outputs is not None or bool(request.get("grad_enabled"))):
                with contextlib.ExitStack() as stack:
                    for each in instruments:
                        stack.enter_context(each)
                    result = target(*args, **kwargs)
                    grads = None
                    if grad_outputs is not None:
                        grads = self._backward(result, grad_outputs, args)
            self.reply_bytes = 0
            reply = {
                "ok": True,
                "value": self.to_plain(result),
                "instruments": {each.name: each.reading() for each in instruments},
                "changed_inputs": [where for where, tensor, before in inputs if not _unchanged(tensor, before)],
                "global_rng": not torch.equal(rng_state, torch.random.get_rng_state()),
            }
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
                "instruments": {"ops": ops.reading()},
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


def _snapshot(args: list[Any], kwargs: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(where, tensor, copy)`` for every tensor among the arguments (nested in lists, tuples, dicts)."""
    import torch

    found: list[tuple[str, Any, Any]] = []

    def walk(value: Any, where: str, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            found.append((where, value, value.detach().clone()))
        elif depth < 4 and isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]", depth + 1)
        elif depth < 4 and isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}[{key!r}]", depth + 1)

    for index, arg in enumerate(args):
        walk(arg, f"argument {index + 1}", 0)
    for key, arg in kwargs.items():
        walk(arg, f"argument `{key}`", 0)
    return found


def _unchanged(tensor: Any, before: Any) -> bool:
    """The tensor still holds what it held before the call (NaN counts as equal to NaN)."""
    import torch

    now = tensor.detach()
    if now.shape != before.shape or now.dtype != before.dtype:
        return False
    if now.is_floating_point() or now.is_complex():
        return bool(((now == before) | (now.isnan() & before.isnan())).all())
    return torch.equal(now, before)


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
