"""The grader's handle on the zygote: one warm, sandboxed process that forks a child per submission.

Importing torch costs about 2 s and scales badly when two graders do it at once,
so each grader process starts one zygote (``worker.py``), which imports torch
once and then forks a fresh child for every submission. In the bubblewrap
sandbox the zygote keeps only CAP_SETUID/CAP_SETGID, and each child switches to
its own random unprivileged uid before it writes or imports any student file.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from autograder import sandbox
from autograder.worker import recv_message, send_message

WORKER_SCRIPT = Path(__file__).with_name("worker.py")


@dataclass(frozen=True)
class Child:
    """One spawned child: the grader's ends of its pipes."""

    id: str
    uid: int | None
    requests: int  # write end: requests to the child
    replies: int  # read end: replies from the child
    output: int  # read end: what the child printed


class Zygote:
    """A running zygote for one set of hidden paths; see the module docstring."""

    def __init__(self, info: sandbox.SandboxInfo, hidden: tuple[Path, ...]) -> None:
        self.info = info
        self.hidden = hidden
        self.workdir = Path(tempfile.mkdtemp(prefix="course-zygote-"))
        os.chmod(self.workdir, 0o755)
        shutil.copyfile(WORKER_SCRIPT, self.workdir / "worker.py")
        os.chmod(self.workdir / "worker.py", 0o644)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fd = theirs.fileno()
        if info.kind == "bwrap":
            command = sandbox.bwrap_command(
                [str(fd)], workdir=self.workdir, hidden=[*hidden, self.workdir.parent], tmp_size_mb=256
            )
            self.tmp = "/tmp"
        else:
            command = [sys.executable, "-I", "-B", str(self.workdir / "worker.py"), str(fd)]
            self.tmp = str(self.workdir)
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_clean_env(),
            cwd=self.workdir,
            pass_fds=[fd],
            start_new_session=True,
        )
        theirs.close()
        self.control = ours
        self.lock = threading.Lock()
        self.errors = bytearray()
        threading.Thread(target=self._drain_errors, daemon=True).start()

    def _drain_errors(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):  # type: ignore[union-attr]
            self.errors = (self.errors + chunk)[-4096:]

    def _call(self, message: dict, fds: list[int] | None = None) -> dict:
        with self.lock:
            try:
                send_message(self.control, message, fds)
                received = recv_message(self.control)
            except OSError:
                received = None
        if received is None:
            raise ZygoteDied(
                f"the grader's worker process stopped: {bytes(self.errors).decode(errors='replace')[-800:]}"
            )
        return received[0]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, files: dict[str, bytes], modules: list[str], limits: dict[str, int]) -> Child:
        """Fork a child for one submission; returns the grader's ends of its pipes."""
        import base64

        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        output_r, output_w = os.pipe()
        uid = sandbox.pick_uid() if self.info.kind == "bwrap" else None
        child_id = secrets.token_hex(8)
        message = {
            "op": "spawn",
            "id": child_id,
            "uid": uid,
            "gid": sandbox.NOBODY,
            "tmp": self.tmp,
            "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
            "modules": modules,
            "limits": limits,
        }
        try:
            self._call(message, [request_r, reply_w, output_w])
        finally:
            for fd in (request_r, reply_w, output_w):
                os.close(fd)
        return Child(child_id, uid, request_w, reply_r, output_r)

    def kill(self, child: Child) -> int | None:
        """Kill the child and every process it started; returns its exit code (negative: signal)."""
        return self._call({"op": "kill", "id": child.id}).get("exit")

    def status(self, child: Child) -> int | None:
        return self._call({"op": "status", "id": child.id}).get("exit")

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.kill()
        self.proc.wait()
        self.control.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class ZygoteDied(RuntimeError):
    pass


_zygotes: dict[tuple, Zygote] = {}
_zygotes_lock = threading.Lock()


def get(info: sandbox.SandboxInfo, hidden: list[Path]) -> Zygote:
    """The zygote for these hidden paths, started on first use and kept for the grader process."""
    key = (info.kind, tuple(sorted(p.resolve() for p in hidden)))
    with _zygotes_lock:
        zygote = _zygotes.get(key)
        if zygote is None or not zygote.alive():
            for other in list(_zygotes.values()):  # a grader process serves one class at a time
                other.close()
            _zygotes.clear()
            zygote = _zygotes[key] = Zygote(info, key[1])
        return zygote


@atexit.register
def _close_all() -> None:
    for zygote in _zygotes.values():
        zygote.close()
    _zygotes.clear()


def _clean_env() -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }
