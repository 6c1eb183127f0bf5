"""The untrusted side: runs student code on request, in its own (sandboxed) process.

This file is copied into the sandbox and run as a script, so it imports only the
standard library and torch, never the rest of the grader. It starts as a
*zygote*: it imports torch once, then forks one child per submission, which
drops to the submission's own unprivileged uid, writes the submission's files
into a private folder and serves calls. A child speaks a tiny protocol on two
pipes: each frame is an 8-byte big-endian length followed by a ``torch.save``
payload, which the receiving side reads with ``torch.load(weights_only=True)``
so no side ever unpickles code.

Nothing this process says is trusted: the grader re-checks every value it gets
back (type, dtype, shape, finiteness) and does all comparisons itself.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import resource
import shutil
import signal
import socket
import struct
import sys
import traceback
import types
from collections.abc import Iterator
from typing import Any

HEADER = struct.Struct(">Q")
REMOTE_KEY = "__remote__"
MAX_REPLY_BYTES = 512 * 2**20  # the grader refuses larger replies too
EXIT_NO_SPACE = 71  # a child could not write the submission's files: the grader's problem, not the student's


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


def _processes_of(uid: int) -> int:
    """How many processes and threads ``uid`` runs now (RLIMIT_NPROC counts both)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return count


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
        self._mode.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(None, None, None)  # type: ignore[no-untyped-call]


MAX_TRACED_SHAPES = 5000


class ShapeRecorder:
    """Records the shape of every tensor an aten op creates while it is active (forward and backward).

    A ``TorchDispatchMode`` sees the ops below autograd, so a ``(T, T)`` score
    matrix shows up however it was made (``matmul``, ``einsum``, ``bmm``, a
    backward formula). Used by tests that check memory use, e.g. that a "flash"
    attention never materialises the full attention matrix. Opt-in per call: it
    slows every op down.
    """

    def __init__(self) -> None:
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
            shapes = ShapeRecorder() if request.get("trace_shapes") else contextlib.nullcontext()
            if request.get("gpu_compile"):
                result = self._gpu_compile(target, args, kwargs, request["gpu_compile"])
                return {"ok": True, "value": result, "ops": []}
            inputs = _snapshot(args, kwargs)  # the caller's tensors, to tell if the call changed them
            rng_state = torch.random.get_rng_state()
            with torch.set_grad_enabled(grad_outputs is not None or bool(request.get("grad_enabled"))):
                with recorder, shapes:
                    result = target(*args, **kwargs)
                    grads = None
                    if grad_outputs is not None:
                        grads = self._backward(result, grad_outputs, args)
            self.reply_bytes = 0
            reply = {
                "ok": True,
                "value": self.to_plain(result),
                "ops": sorted(recorder.ops),
                "changed_inputs": [where for where, tensor, before in inputs if not _unchanged(tensor, before)],
                "global_rng": not torch.equal(rng_state, torch.random.get_rng_state()),
            }
            if grads is not None:
                reply["grads"] = grads
            if isinstance(shapes, ShapeRecorder):
                reply["shapes"] = sorted(list(shape) for shape in shapes.shapes)
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

    def _gpu_compile(
        self, target: Any, args: list[Any], kwargs: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        """Record the kernel launches ``target`` makes in GPU mode for ``sm_<capability>``, in a fresh process.

        ``target`` must be a top-level function of one of the student's files. Returns
        ``triton_aot.py``'s report of the launches, which the grader compiles itself
        (``kernel_source.compile_from_source``); in-process (the otter and nbgrader exports)
        there is no file to compile from, and the report says ``"skipped"``.
        """
        import subprocess

        import torch

        if not self.submission_dir:
            return {"ok": False, "stage": "skipped", "error": "no GPU compile check in-process"}
        module = sys.modules.get(getattr(target, "__module__", ""), None)
        path = getattr(module, "__file__", None)
        name = getattr(target, "__name__", "")
        if path is None or getattr(module, name, None) is not target:
            return {"ok": False, "stage": "load", "error": "not a top-level function of your file"}
        scratch = os.path.abspath(f"gpu-compile-{spec['capability']}")
        os.makedirs(scratch, exist_ok=True)
        args_path = os.path.join(scratch, "args.pt")
        torch.save((args, kwargs), args_path)
        env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
        env.update(HOME=scratch, TRITON_CACHE_DIR=os.path.join(scratch, "cache"), TRITON_DEFAULT_FP_FUSION="1")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "triton_aot.py")
        command = [sys.executable, "-I", "-B", script, path, name, args_path, str(int(spec["capability"]))]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, cwd=scratch, timeout=float(spec["timeout_s"])
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "stage": "compile", "error": f"compiling took over {spec['timeout_s']:g} s"}
        lines = done.stdout.strip().splitlines()
        try:
            report = json.loads(lines[-1]) if lines else None
        except ValueError:
            report = None
        if not isinstance(report, dict):
            tail = (done.stderr or done.stdout)[-800:]
            return {"ok": False, "stage": "load", "error": f"the compile process exited with {done.returncode}: {tail}"}
        return report

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


def run_child(request: dict[str, Any], sockets: list[socket.socket]) -> None:
    """In a freshly forked child: become the submission's sandbox user, write its files, serve calls."""
    for sock in sockets:  # the zygote's control sockets are not the child's business
        sock.close()
    os.setsid()  # its own session and process group, so it can be killed as a whole
    read_fd, write_fd, output_fd = request["fds"]
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    uid = request.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setresgid(request["gid"], request["gid"], request["gid"])
        os.setresuid(uid, uid, uid)  # drops every capability the zygote had
    channel = Channel(read_fd, write_fd)
    # The files come on the child's own pipe, never through the zygote, whose memory
    # every later child inherits.
    first = channel.recv()
    folder = _child_folder(request)
    try:
        os.mkdir(folder, 0o700)
        for key, mode in (("files", 0o600), ("carried", 0o400)):  # earlier weeks' modules: read-only
            for name, content in (first or {}).get(key, {}).items():
                path = os.path.join(folder, os.path.basename(name))
                with open(path, "wb") as handle:
                    handle.write(content.numpy().tobytes())
                os.chmod(path, mode)
    except OSError:
        os._exit(EXIT_NO_SPACE)  # the sandbox's temp space is broken: not the student's fault
    os.chdir(folder)
    limits = request["limits"]
    max_processes = limits["max_processes"]
    if uid is None:  # sharing the grading user's process count: allow what it already runs
        max_processes += _processes_of(os.getuid())
    _set_limits(limits["memory_mb"], max_processes, limits["max_file_mb"], limits["cpu_seconds"])
    worker = Worker(folder, request["modules"])
    channel.send({"ready": True})  # import errors are reported with each call that needs the module
    while True:
        message = channel.recv()
        if message is None:
            break
        reply = worker.handle(message)
        try:
            channel.send(reply)
        except Exception as exc:  # an unpicklable value slipped through
            channel.send({"ok": False, "kind": "error", "message": f"could not send the result back: {exc}", "ops": []})
    os._exit(0)


def _child_folder(request: dict[str, Any]) -> str:
    """Where a child writes its submission's files, in the zygote's temp folder."""
    return os.path.join(request["tmp"], f"submission-{request['id']}")


def _kill_all_of(uid: int | None, pid: int, tmp: str, own_folder: str) -> None:
    """Kill a child and everything it started, then delete what it wrote.

    With a uid of its own, a killer process becomes that uid and signals every process it
    may (so no process of the child survives, whatever session it moved to), then removes
    every file of that uid at the top of ``tmp`` and /dev/shm and its System V IPC objects.
    Without (no sandbox), the child's process group is killed and ``own_folder`` removed.
    """
    if uid is None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        shutil.rmtree(own_folder, ignore_errors=True)
        return
    killer = os.fork()
    if killer == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except the caller
            for folder in (tmp, "/dev/shm"):
                _remove_files_of(uid, folder)
            _remove_ipc_of(uid)
        finally:
            os._exit(0)
    os.waitpid(killer, 0)


def _remove_files_of(uid: int, folder: str) -> None:
    """Delete every entry of ``uid`` at the top of ``folder``, making its folders writable first."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if entry.is_dir(follow_symlinks=False):
                for root, dirs, _ in os.walk(entry.path):  # a read-only folder would keep its files
                    for name in [".", *dirs]:
                        path = os.path.join(root, name)
                        if os.lstat(path).st_uid == uid and not os.path.islink(path):
                            os.chmod(path, 0o700)
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _remove_ipc_of(uid: int) -> None:
    """Remove the System V shared memory, message queues and semaphores ``uid`` created."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0

    def remove(kind: str, ident: int) -> None:
        if kind == "sem":
            libc.semctl(ident, 0, ipc_rmid)
        else:
            getattr(libc, f"{kind}ctl")(ident, ipc_rmid, None)

    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                header, *rows = table.read().splitlines()
        except OSError:
            continue
        columns = header.split()
        for row in rows:
            fields = dict(zip(columns, row.split(), strict=False))
            if fields.get("uid") == str(uid) or fields.get("cuid") == str(uid):
                remove(kind, int(fields.get("shmid") or fields.get("msqid") or fields.get("semid") or -1))


def _temp_space_left(folder: str) -> float:
    """The fraction of ``folder``'s file system (blocks or inodes, whichever is scarcer) still free."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return 1.0
    blocks = stats.f_bavail / stats.f_blocks if stats.f_blocks else 1.0
    inodes = stats.f_favail / stats.f_files if stats.f_files else 1.0
    return min(blocks, inodes)


def zygote_main(registry_fd: int) -> None:
    """Import torch once, then fork one child per submission on request.

    Grader processes register a private control channel each by sending one end
    of a socket pair over the *registry* (a SOCK_SEQPACKET socket, so
    registrations from several graders never interleave). On a channel, a
    request is a length-prefixed JSON message, with the child's three pipe ends
    attached as SCM_RIGHTS file descriptors for ``spawn`` (start a child for a
    submission); ``kill`` ends a child and all its processes and answers with
    its exit status.
    """
    import select

    import torch

    torch.set_num_threads(1)
    with OpRecorder():  # warm up the op recorder, common ops, autograd and the wire format before forking
        leaf = torch.ones(2, 2, requires_grad=True)
        torch.autograd.backward([(leaf @ leaf).softmax(-1).sum()], [torch.ones(())])  # imports sympy: 0.6 s
    buffer = io.BytesIO()
    torch.save({"x": torch.ones(2), "y": [1, "a", None], "z": (True, 2.0)}, buffer)
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    registry = socket.socket(fileno=registry_fd)
    channels: list[socket.socket] = []
    # Consecutive uids from a random start: no two children of this zygote share one, and another
    # zygote on the machine (a second grading run) almost surely uses a different stretch.
    uids = iter(range(int.from_bytes(os.urandom(4), "big"), 2**40))
    children: dict[str, tuple[int, int | None]] = {}  # id -> (pid, uid)
    statuses: dict[int, int] = {}
    while True:
        readable, _, _ = select.select([registry, *channels], [], [])
        for sock in readable:
            if sock is registry:
                _, fds, _, _ = socket.recv_fds(registry, 16, 1)
                if not fds:
                    os._exit(0)  # the grader that started us is gone
                channels.append(socket.socket(fileno=fds[0]))
                continue
            received = recv_message(sock)
            if received is None:
                channels.remove(sock)
                sock.close()
                continue
            request, fds = received
            reply = _serve(request, fds, children, statuses, [registry, *channels], uids)
            send_message(sock, reply)
        try:  # reap children that ended, keeping their statuses
            while True:
                ended, status = os.waitpid(-1, os.WNOHANG)
                if not ended:
                    break
                statuses[ended] = status
        except ChildProcessError:
            pass


def _serve(
    request: dict[str, Any],
    fds: list[int],
    children: dict[str, tuple[int, int | None]],
    statuses: dict[int, int],
    sockets: list[socket.socket],
    uids: Iterator[int],
) -> dict[str, Any]:
    """Handle one control request in the zygote."""
    op = request["op"]
    reply: dict[str, Any] = {"ok": True}
    if op == "spawn":
        request["fds"] = fds
        if request.get("uid_base") is not None:
            request["uid"] = request["uid_base"] + next(uids) % request["uid_count"]
        pid = os.fork()
        if pid == 0:
            try:
                run_child(request, sockets)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        children[request["id"]] = (pid, request.get("uid"))
        reply["pid"], reply["uid"] = pid, request.get("uid")
    elif op == "kill":
        pid, uid = children.pop(request["id"], (0, None))
        if pid:
            _kill_all_of(uid, pid, request["tmp"], _child_folder(request))
            if pid not in statuses:
                try:
                    statuses[pid] = os.waitpid(pid, 0)[1]
                except ChildProcessError:
                    pass
        status = statuses.pop(pid, None)
        reply["exit"] = None if status is None else os.waitstatus_to_exitcode(status)
        reply["temp_space_left"] = _temp_space_left(request["tmp"])
    return reply


CONTROL_HEADER = struct.Struct(">I")


def send_message(control: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One control message: a 4-byte length and JSON, with ``fds`` attached to its first bytes."""
    data = json.dumps(message).encode()
    frame = CONTROL_HEADER.pack(len(data)) + data
    sent = socket.send_fds(control, [frame], fds) if fds else control.send(frame)
    if sent < len(frame):
        control.sendall(frame[sent:])


def recv_message(control: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    header, fds, _, _ = socket.recv_fds(control, CONTROL_HEADER.size, 8)
    if not header:
        return None
    while len(header) < CONTROL_HEADER.size:
        more = control.recv(CONTROL_HEADER.size - len(header))
        if not more:
            return None
        header += more
    (size,) = CONTROL_HEADER.unpack(header)
    data = b""
    while len(data) < size:
        chunk = control.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return json.loads(data), fds


if __name__ == "__main__":
    zygote_main(int(sys.argv[1]))
