"""The trusted side of the process boundary: a proxy that stands for the student's module.

Hidden tests call ``student.softmax(x)`` as if the module were local. Each call is
sent to the worker process (see ``worker.py``), which runs the student's code
under time, memory, process and file-size limits, and sends back plain tensors
and numbers, read with ``torch.load(weights_only=True)``. Objects the student
creates (``nn.Module`` instances) stay in the worker; the grader holds a
``RemoteObject`` handle and forwards calls, attribute reads and backward passes.
"""

from __future__ import annotations

import io
import os
import select
import signal
import stat
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import audit, kernel_source, safe_text, sandbox, zygote
from autograder.config import Limits
from autograder.worker import EXIT_NO_SPACE, HEADER, MAX_REPLY_BYTES, REMOTE_KEY

MAX_STARTUP_FAILURES = 2
STARTUP_TIMEOUT_S = 60.0  # importing the student's files (their module-level code included)
MAX_PICKLE_BYTES = 16 * 2**20  # the non-tensor part of a reply; tensors may be larger
MAX_DEPTH = 20  # nesting of lists, tuples and dicts in a reply
MAX_ITEMS = 100_000  # lists, tuples, dicts and their items in a reply
MAX_FAILURES_PER_FUNCTION = 2  # timeouts, crashes or out-of-memory; then the function's calls fail at once


class SandboxFailure(RuntimeError):
    """The sandbox itself failed (not the student's doing): the grade must not stand."""


class StudentCodeError(AssertionError):
    """Something went wrong in the student's code; the test fails with this message.

    It subclasses AssertionError so pytest counts it as a failure, not an error
    in the test itself.
    """


class StudentException(StudentCodeError):
    """The student's function raised an exception."""


class NotImplementedYet(StudentCodeError):
    """The student's function still raises NotImplementedError (an untouched stub)."""


class StudentTimeout(StudentCodeError):
    """A call ran past its time limit; the worker was killed and will restart."""


class StudentCrash(StudentCodeError):
    """The worker died (os._exit, a signal, the memory limit) or broke the protocol."""


class BadReturnValue(StudentCodeError):
    """The student returned something other than plain tensors and numbers."""


@dataclass
class _OutputTail:
    """Keeps the first ``limit`` bytes a stream produces and counts the rest."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        self.data += chunk[: max(room, 0)]
        self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        out = safe_text.clean(self.data.decode("utf-8", "replace"))
        if self.dropped:
            out += f"\n... [{self.dropped} more bytes of output dropped]"
        return out


class RecordedOps(frozenset[str]):
    """The op names a call ran, as the worker's recorder reported them, with the submission's escapes.

    ``escapes`` lists what the grader read in the student's files that the recorder cannot see
    through (``torch.jit``, NumPy, ``getattr`` with a computed name ...): checks built on the
    recording refuse to pass while there are any (``checks.assert_no_forbidden_ops``).
    """

    escapes: tuple[audit.Escape, ...]

    def __new__(cls, ops: Any = (), escapes: tuple[audit.Escape, ...] = ()) -> RecordedOps:
        recorded = super().__new__(cls, ops)
        recorded.escapes = tuple(escapes)
        return recorded


class RecordedShapes(list[tuple[int, ...]]):
    """The tensor shapes a traced call created, with the submission's escapes (see ``RecordedOps``)."""

    def __init__(self, shapes: Any = (), escapes: tuple[audit.Escape, ...] = ()) -> None:
        super().__init__(shapes)
        self.escapes = tuple(escapes)


def read_submission(files: list[str], submission_dir: Path, limit_mb: int) -> dict[str, bytes]:
    """The week's files as bytes: regular files only (a symlink could point at the solutions).

    Missing files are simply absent; the worker then reports a clear import error
    for each test that needs them.
    """
    contents: dict[str, bytes] = {}
    for name in files:
        path = submission_dir / name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size <= limit_mb * 2**20:
            contents[name] = path.read_bytes()
    return contents


class StudentProcess:
    """The child process running one submission, restarted after a timeout or crash.

    Children are forked from the grader process's zygote (see ``zygote.py``), so
    starting one costs milliseconds, not a torch import.
    """

    def __init__(
        self,
        source_dir: Path,
        files: list[str],
        limits: Limits,
        *,
        hidden_paths: list[Path] | None = None,
        sandbox_info: sandbox.SandboxInfo | None = None,
        carried: dict[str, bytes] | None = None,
        audited_carried: frozenset[str] = frozenset(),
    ) -> None:
        self.modules = [name.removesuffix(".py") for name in files if name.endswith(".py")]
        self.limits = limits
        self.sandbox = sandbox_info or sandbox.choose()
        self.files = read_submission(files, Path(source_dir), limits.max_file_mb)
        # Earlier weeks' modules the week imports, written read-only beside the student's files.
        self.carried = {name: data for name, data in (carried or {}).items() if name not in self.files}
        # Read here, before any of it runs: what the in-sandbox op and shape checks cannot vouch for.
        # ``audited_carried``: the carried modules that are the student's own files too.
        student_code = {**self.files, **{n: d for n, d in self.carried.items() if n in audited_carried}}
        self.escapes = audit.audit_files(student_code, local_modules=[n.removesuffix(".py") for n in self.carried])
        self.hidden_paths = list(hidden_paths or [])
        self.zygote = zygote.get(self.sandbox, self.hidden_paths)
        self.started_at = time.monotonic()
        self.output = _OutputTail(limits.max_output_kb * 1024)
        self.last_ops = RecordedOps((), self.escapes)  # torch functions the last call ran
        self.last_shapes = RecordedShapes((), self.escapes)  # tensor shapes the last traced call created
        self.last_used_global_rng = False  # whether the last call drew from (or reseeded) torch's global RNG
        self.last_peak_bytes: int | None = None  # peak memory growth of the last measured call
        self._call_limit = limits.call_timeout_s  # the time limit of the call in flight
        self.restarts = 0
        self._startup_failures = 0
        self._failures: Counter[str] = Counter()  # label -> timeouts and crashes
        self._broken: str | None = None
        self._child: zygote.Child | None = None
        self._host_pid: tuple[zygote.Child, int | None] | None = None  # the child whose pid was looked up, and it
        self._ready = False
        self._spawned = False  # the first request spawns the child, so pytest starts meanwhile

    # -- lifecycle ----------------------------------------------------------
    def _start(self) -> None:
        limits = self.limits
        self._child = self.zygote.spawn(
            self.modules,
            {
                "memory_mb": limits.memory_mb,
                "max_processes": limits.max_processes,
                "max_file_mb": limits.max_file_mb,
                "cpu_seconds": int(limits.total_timeout_s) + 5,
            },
        )
        self._ready = False
        threading.Thread(target=self._drain, args=(self._child.output,), daemon=True).start()
        import torch

        def as_tensors(contents: dict[str, bytes]) -> dict[str, Any]:
            return {
                name: torch.frombuffer(bytearray(data), dtype=torch.uint8)
                if data
                else torch.zeros(0, dtype=torch.uint8)
                for name, data in contents.items()
            }

        message = {"files": as_tensors(self.files), "carried": as_tensors(self.carried)}
        try:
            self._send(message, time.monotonic() + STARTUP_TIMEOUT_S, "starting your code")
        except OSError:
            pass  # the child is already gone; waiting for it to be ready reports how

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as stream:
            for chunk in iter(lambda: stream.read(65536), b""):
                self.output.feed(chunk)

    def _wait_ready(self) -> None:
        if self._ready:
            return
        remaining = self.limits.total_timeout_s - (time.monotonic() - self.started_at)
        timeout = min(max(STARTUP_TIMEOUT_S, self.limits.call_timeout_s), max(remaining, 0.0))
        try:
            self._recv(time.monotonic() + timeout, "starting your code")  # {"ready": True}
        except StudentCodeError as exc:
            self._startup_failures += 1
            if self._startup_failures >= MAX_STARTUP_FAILURES:
                self._broken = f"your code could not be started ({exc}); the remaining tests were not run"
            raise
        self._ready = True

    def _reset_peak(self) -> tuple[int, int] | None:
        """Reset the child's peak-memory mark (``/proc/PID/clear_refs``); ``(pid, resident kB now)`` or None.

        The sandbox mounts ``/proc`` read-only for the child, so only the grader can reset the mark.
        """
        if self._child is None:
            return None
        if self._host_pid is None or self._host_pid[0] is not self._child:
            self._host_pid = (self._child, _host_pid(self._child))
        pid = self._host_pid[1]
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            return None
        resident = _status_kb(pid, "VmRSS")
        return None if resident is None else (pid, resident)

    def _kill(self) -> int | None:
        """Kill the child and all its processes; returns its exit code (negative: a signal)."""
        child, self._child = self._child, None
        if child is None:
            return None
        os.close(child.requests)
        os.close(child.replies)
        try:
            return self.zygote.kill(child)
        except zygote.ZygoteDied:
            return None

    def _ensure_running(self) -> None:
        if self._broken:
            raise StudentCrash(self._broken)
        if self._child is None:
            self.restarts += self._spawned
            self._spawned = True
            self._start()
        self._wait_ready()

    def close(self) -> None:
        self._kill()

    def count_failure(self, label: str) -> None:
        """Count a timeout, crash or out-of-memory of ``label``; after a few its calls fail at once."""
        self._failures[label] += 1

    # -- protocol -----------------------------------------------------------
    def _send(self, message: Any, deadline: float, label: str) -> None:
        """Write one request; a child that stops reading cannot block the grader past ``deadline``."""
        import torch

        buffer = io.BytesIO()
        torch.save(message, buffer)
        assert self._child is not None
        fd = self._child.requests
        data = memoryview(HEADER.pack(buffer.tell()) + buffer.getvalue())
        while data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                self._kill()
                raise StudentTimeout(self._timeout_message(label))
            try:
                data = data[os.write(fd, data) :]
            except BlockingIOError:
                continue

    def _read_exact(self, size: int, deadline: float, label: str) -> bytes:
        assert self._child is not None
        fd = self._child.replies
        chunks, remaining = [], size
        while remaining:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _recv(self, deadline: float, label: str) -> Any:
        import torch

        try:
            (size,) = HEADER.unpack(self._read_exact(HEADER.size, deadline, label))
            if size > MAX_REPLY_BYTES:
                self._kill()
                raise StudentCrash(f"{label} returned more than {MAX_REPLY_BYTES >> 20} MB of data")
            payload = self._read_exact(size, deadline, label)
            if _pickle_size(payload) > MAX_PICKLE_BYTES:
                self._kill()
                raise StudentCrash(f"{label} sent back a reply that is not plain data of a sane size")
            return torch.load(io.BytesIO(payload), weights_only=True)
        except EOFError:
            code = self._kill()
            if code == EXIT_NO_SPACE:
                raise SandboxFailure(
                    "the sandbox had no space left for this submission's files; grade it again"
                ) from None
            raise StudentCrash(f"the process running your code died {self._death_reason(code)} while {label}") from None
        except TimeoutError:
            self._kill()
            raise StudentTimeout(self._timeout_message(label)) from None
        except StudentCodeError:
            raise
        except Exception as exc:  # a payload that is not plain data
            self._kill()
            raise StudentCrash(f"{label} sent back something unreadable ({type(exc).__name__})") from None

    def _death_reason(self, code: int | None) -> str:
        if code is None:
            return ""
        if code < 0:
            name = signal.Signals(-code).name
            if -code == signal.SIGKILL:
                return f"(killed by {name}, often the {self.limits.memory_mb} MB memory limit)"
            if -code == signal.SIGXCPU:
                return "(CPU time limit)"
            if -code == signal.SIGXFSZ:
                return f"(wrote a file over the {self.limits.max_file_mb} MB limit)"
            return f"(killed by {name})"
        return f"(it exited with code {code}: do not call sys.exit or os._exit)"

    def _timeout_message(self, label: str) -> str:
        elapsed = time.monotonic() - self.started_at
        if elapsed >= self.limits.total_timeout_s:
            return f"the submission's time limit of {self.limits.total_timeout_s:g} s was used up while {label}"
        return f"timed out after {self._call_limit:g} s in {label}"

    def request(
        self, message: dict[str, Any], label: str, timeout_s: float | None = None, *, measure_memory: bool = False
    ) -> dict[str, Any]:
        """Send one request and wait for its reply within the time limits (``timeout_s`` instead of the call limit).

        ``measure_memory``: the child's peak resident memory during the call, read by the grader
        from the kernel's accounting (``/proc/PID/status``), lands in ``last_peak_bytes``.
        """
        remaining = self.limits.total_timeout_s - (time.monotonic() - self.started_at)
        if remaining <= 0:
            raise StudentTimeout(f"the submission's time limit of {self.limits.total_timeout_s:g} s was used up")
        if self._failures[label] >= MAX_FAILURES_PER_FUNCTION:
            raise StudentTimeout(
                f"not run: {label} already timed out, crashed or ran out of memory "
                f"{self._failures[label]} times in this submission"
            )
        self._ensure_running()
        start = time.monotonic()
        self._call_limit = timeout_s or self.limits.call_timeout_s
        deadline = start + min(self._call_limit, remaining)
        self.last_peak_bytes = None
        baseline = self._reset_peak() if measure_memory else None
        try:
            self._send(message, deadline, label)
            reply = self._recv(deadline, label)
            if baseline is not None:
                peak = _status_kb(baseline[0], "VmHWM")
                self.last_peak_bytes = None if peak is None else max(peak - baseline[1], 0) * 1024
        except OSError:  # the pipe broke: the child is gone
            self.count_failure(label)
            code = self._kill()
            raise StudentCrash(f"the process running your code died {self._death_reason(code)} while {label}") from None
        except (StudentTimeout, StudentCrash):
            self.count_failure(label)
            raise
        if not isinstance(reply, dict) or "ok" not in reply:
            self._kill()
            raise StudentCrash(f"{label} sent back a malformed reply")
        self.last_ops = RecordedOps((str(op) for op in reply.get("ops", [])), self.escapes)
        self.last_shapes = RecordedShapes(_shapes(reply.get("shapes", [])), self.escapes)
        self.last_used_global_rng = reply.get("global_rng") is True
        return reply


def _status_kb(pid: int, key: str) -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM``: peak resident memory; ``VmRSS``: now)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _host_pid(child: zygote.Child) -> int | None:
    """The child's process id as this process sees it (in bubblewrap it lives in its own PID namespace)."""
    if child.uid is None:
        return child.pid or None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        uids = fields.get("Uid", "").split()
        nspids = fields.get("NSpid", "").split()
        if uids and int(uids[0]) == child.uid and nspids and int(nspids[-1]) == child.pid:
            return int(entry)
    return None


def _shapes(value: Any) -> list[tuple[int, ...]]:
    """Traced shapes from a reply, checked: a list of at most 5000 lists of at most 16 ints."""
    if not isinstance(value, list) or len(value) > 5000:
        raise StudentCrash("the process running your code sent back malformed shapes")
    shapes = []
    for shape in value:
        if not isinstance(shape, list) or len(shape) > 16 or not all(type(n) is int for n in shape):
            raise StudentCrash("the process running your code sent back malformed shapes")
        shapes.append(tuple(shape))
    return shapes


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


def _pickle_size(payload: bytes) -> int:
    """Size of the pickle inside a ``torch.save`` archive (the part that is not tensor data).

    Anything but what the worker's ``torch.save`` writes counts as too large: an archive whose
    records are compressed (a DEFLATE record of a few MB can inflate to GBs in the grader) or
    whose records add up to more than the reply itself could hold.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            records = archive.infolist()
    except zipfile.BadZipFile:
        return MAX_PICKLE_BYTES + 1  # not what the worker writes (torch.save's zip format): refuse it
    if any(info.compress_type != zipfile.ZIP_STORED for info in records):
        return MAX_PICKLE_BYTES + 1
    if sum(info.file_size for info in records) > len(payload):  # stored records cannot be larger than the archive
        return MAX_PICKLE_BYTES + 1
    return sum(info.file_size for info in records if info.filename.endswith("data.pkl"))


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
            trace_shapes=trace_shapes,
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
        reply = self._request("call", args=_encode(list(args)), kwargs=_encode(kwargs), trace_shapes=True)
        return _decode(reply["value"], self._owner, self._label)

    def compile_for_gpu(self, capability: int, *args: Any, timeout_s: float = 120.0, **kwargs: Any) -> dict[str, Any]:
        """Call this function with Triton in GPU mode, compiling (never running) each kernel it launches.

        For ``sm_<capability>`` (80: A100, 90: H100), on a machine without a GPU. Two steps:
        the worker runs the wrapper in a fresh process in the sandbox (``autograder/triton_aot.py``),
        which reports the launches it saw; then the grader compiles those launches again from the
        kernels cut out of the student's file, where none of their code runs
        (``autograder/kernel_source.py``). Returns that second report, ``{"ok": True, "kernels":
        [{"name", "target", "shared", "mma"}]}``, or ``{"ok": False, "stage", "error"}``.
        """
        spec = {"capability": capability, "timeout_s": timeout_s}
        reply = self._request(
            "call", timeout_s + 10.0, args=_encode(list(args)), kwargs=_encode(kwargs), gpu_compile=spec
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
