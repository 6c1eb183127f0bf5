"""The grader's side of one submission's sandboxed process: start, call, time out, restart, measure.

Children are forked from the zygote (``zygote_client.py``), so starting one costs
milliseconds, not a torch import. Every call is one ``sandboxed.protocol`` frame each way,
under a deadline; what comes back is checked (size, format, plain data) before anything
reads it. Peak memory is read from the kernel's accounting of the child (``/proc``), which
the child cannot reset.
"""

from __future__ import annotations

import io
import os
import select
import signal
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from autograder import audit, peak_memory, sandbox, zygote_client
from autograder.config import Limits
from autograder.recorded import RecordedOps, RecordedShapes
from autograder.sandboxed.protocol import EXIT_NO_SPACE, HEADER, MAX_REPLY_BYTES, frame, frame_size, load
from autograder.student_errors import SandboxFailure, StudentCodeError, StudentCrash, StudentTimeout
from autograder.submission_files import OutputTail, read_submission

MAX_STARTUP_FAILURES = 2
STARTUP_TIMEOUT_S = 60.0  # importing the student's files (their module-level code included)
MAX_PICKLE_BYTES = 16 * 2**20  # the non-tensor part of a reply; tensors may be larger
MAX_FAILURES_PER_FUNCTION = 2  # timeouts, crashes or out-of-memory; then the function's calls fail at once


class StudentProcess:
    """The child process running one submission, restarted after a timeout or crash.

    Children are forked from the grader process's zygote (see ``zygote_client.py``), so
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
        self.zygote = zygote_client.get(self.sandbox, self.hidden_paths)
        self.started_at = time.monotonic()
        self.output = OutputTail(limits.max_output_kb * 1024)
        self.last_ops = RecordedOps((), self.escapes)  # torch functions the last call ran
        self.last_shapes = RecordedShapes((), self.escapes)  # tensor shapes the last traced call created
        self.last_used_global_rng = False  # whether the last call drew from (or reseeded) torch's global RNG
        self.last_peak_bytes: int | None = None  # peak memory growth of the last measured call
        self.last_readings: dict[str, Any] = {}  # the last call's instrument readings (``sandboxed/instruments.py``)
        self._call_limit = limits.call_timeout_s  # the time limit of the call in flight
        self.restarts = 0
        self._startup_failures = 0
        self._failures: Counter[str] = Counter()  # label -> timeouts and crashes
        self._broken: str | None = None
        self._child: zygote_client.Child | None = None
        self._host_pid: tuple[zygote_client.Child, int | None] | None = (
            None  # the child whose pid was looked up, and it
        )
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
        """Reset the child's peak-memory mark; ``(host pid, resident kB now)``, or None where it cannot be."""
        if self._child is None:
            return None
        if self._host_pid is None or self._host_pid[0] is not self._child:
            self._host_pid = (self._child, peak_memory.host_pid(self._child.pid, self._child.uid))
        pid = self._host_pid[1]
        if pid is None:
            return None
        resident = peak_memory.reset_peak(pid)
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
        except zygote_client.ZygoteDied:
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
        assert self._child is not None
        fd = self._child.requests
        data = memoryview(frame(message))
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
        try:
            size = frame_size(self._read_exact(HEADER.size, deadline, label))
            if size > MAX_REPLY_BYTES:
                self._kill()
                raise StudentCrash(f"{label} returned more than {MAX_REPLY_BYTES >> 20} MB of data")
            payload = self._read_exact(size, deadline, label)
            if _pickle_size(payload) > MAX_PICKLE_BYTES:
                self._kill()
                raise StudentCrash(f"{label} sent back a reply that is not plain data of a sane size")
            return load(payload)
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
                peak = peak_memory.status_kb(baseline[0], "VmHWM")
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
        readings = reply.get("instruments")
        readings = readings if isinstance(readings, dict) else {}
        ops = readings.get("ops")
        self.last_ops = RecordedOps((str(op) for op in ops) if isinstance(ops, list) else (), self.escapes)
        self.last_shapes = RecordedShapes(_shapes(readings.get("shapes", [])), self.escapes)
        self.last_readings = readings  # every instrument's reading, checked by whoever reads it
        self.last_used_global_rng = reply.get("global_rng") is True
        return reply


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
