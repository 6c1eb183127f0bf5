"""The grader's handle on the zygote: one warm, sandboxed process that forks a child per submission.

Importing torch costs about 2 s and scales badly when two graders do it at once,
so each grader process starts one zygote (``sandboxed/zygote.py``), which imports torch
once and then forks a fresh child for every submission. In the bubblewrap
sandbox the zygote keeps only CAP_SETUID/CAP_SETGID, and each child switches to
its own unprivileged uid (handed out by the zygote, never reused in a run) before it
reads, writes or imports any student file.
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
from typing import Any

from autograder import sandbox
from autograder.sandboxed.protocol import recv_message, send_message

SANDBOXED = Path(__file__).with_name("sandboxed")  # the only engine code the sandbox sees, copied in whole
START_ZYGOTE = "import sys; sys.path.insert(0, sys.argv.pop(1)); from sandboxed.zygote import main; main()"
MIN_TEMP_SPACE_LEFT = 0.5  # below this fraction of free temp space, the zygote is replaced
CONTROL_TIMEOUT_S = 120.0  # no zygote request (a fork, a kill and clean-up) takes this long


@dataclass(frozen=True)
class Child:
    """One spawned child: the grader's ends of its pipes."""

    id: str
    uid: int | None
    requests: int  # write end: requests to the child
    replies: int  # read end: replies from the child
    output: int  # read end: what the child printed
    pid: int = 0  # its process id in the zygote's PID namespace (the host's without bubblewrap)


class Server:
    """Owns one zygote process, started for a set of hidden paths.

    Grader processes talk to it through a ``Client`` each: a private channel
    registered over the server's registry socket. Pool processes forked from the
    process that started the server register their own channels, so a whole
    class is graded with a single zygote.
    """

    def __init__(self, info: sandbox.SandboxInfo, hidden: tuple[Path, ...]) -> None:
        self.info = info
        self.hidden = hidden
        self.owner = os.getpid()
        self.workdir = Path(tempfile.mkdtemp(prefix="course-zygote-"))
        os.chmod(self.workdir, 0o755)
        copy_sandboxed(self.workdir)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = theirs.fileno()
        if info.kind == "bwrap":
            command = sandbox.bwrap_command(
                ["-c", START_ZYGOTE, "/tmp/grader", str(fd)],
                workdir=self.workdir,
                hidden=[*hidden, self.workdir.parent],
                tmp_size_mb=256,
            )
            self.tmp = "/tmp"
        else:
            command = [sys.executable, "-I", "-B", "-c", START_ZYGOTE, str(self.workdir), str(fd)]
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
        self.registry = ours
        self.dirty = False
        self.errors = bytearray()
        threading.Thread(target=self._drain_errors, daemon=True).start()

    def _drain_errors(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            self.errors = (self.errors + chunk)[-4096:]

    def covers(self, info: sandbox.SandboxInfo, hidden: list[Path]) -> bool:
        """True when this zygote hides at least ``hidden`` (everything under /tmp is hidden anyway)."""
        roots = [*self.hidden, Path(tempfile.gettempdir()).resolve()]
        return info.kind == self.info.kind and all(
            any(path.resolve().is_relative_to(root) for root in roots) for path in hidden
        )

    def alive(self) -> bool:
        if os.getpid() == self.owner:
            return self.proc.poll() is None
        try:
            os.kill(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def connect(self) -> Client:
        """A private control channel for this process."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        socket.send_fds(self.registry, [b"channel"], [theirs.fileno()])
        theirs.close()
        return Client(self, mine)

    def close(self) -> None:
        if os.getpid() != self.owner:
            return  # only the process that started the zygote stops it
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.kill()
        self.proc.wait()
        self.registry.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Client:
    """One grader process's channel to the zygote: spawn children and kill them."""

    def __init__(self, server: Server, control: socket.socket) -> None:
        self.server = server
        self.control = control
        self.control.settimeout(CONTROL_TIMEOUT_S)
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def _call(self, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        with self.lock:
            try:
                send_message(self.control, message, fds)
                received = recv_message(self.control)
            except OSError:
                received = None
        if received is None:
            errors = bytes(self.server.errors).decode(errors="replace")[-800:]
            raise ZygoteDied(f"the grader's worker process stopped: {errors}")
        return received[0]

    def spawn(self, modules: list[str], limits: dict[str, int]) -> Child:
        """Fork a child for one submission; returns the grader's ends of its pipes.

        The submission's files are not sent here: the grader writes them as the first
        frame on the child's private request pipe (so they never sit in the zygote's memory).
        """
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        output_r, output_w = os.pipe()
        child_id = secrets.token_hex(8)
        message: dict[str, Any] = {
            "op": "spawn",
            "id": child_id,
            "gid": sandbox.NOBODY,
            "tmp": self.server.tmp,
            "modules": modules,
            "limits": limits,
        }
        if self.server.info.kind == "bwrap":  # the zygote hands out uids, so no two children share one
            message.update(uid_base=sandbox.SANDBOX_UID_BASE, uid_count=sandbox.SANDBOX_UID_COUNT)
        try:
            reply = self._call(message, [request_r, reply_w, output_w])
        finally:
            for fd in (request_r, reply_w, output_w):
                os.close(fd)
        os.set_blocking(request_w, False)  # the grader writes with a deadline (StudentProcess._send)
        return Child(child_id, reply.get("uid"), request_w, reply_r, output_r, int(reply.get("pid") or 0))

    def kill(self, child: Child) -> int | None:
        """Kill the child and every process it started; returns its exit code (negative: signal).

        When the zygote's shared temp space did not come back (a child found a way to keep
        files), the server is marked dirty and the next submission gets a fresh zygote.
        """
        reply = self._call({"op": "kill", "id": child.id, "tmp": self.server.tmp})
        if reply.get("temp_space_left", 1.0) < MIN_TEMP_SPACE_LEFT:
            self.server.dirty = True
        exit_code = reply.get("exit")
        return None if exit_code is None else int(exit_code)


class ZygoteDied(RuntimeError):
    pass


_servers: list[Server] = []
_clients: dict[int, Client] = {}  # id(server) -> this process's client
_lock = threading.Lock()


def copy_sandboxed(folder: Path) -> None:
    """Copy the ``sandboxed`` package into ``folder`` (readable by the children's uids), sources only."""
    target = folder / SANDBOXED.name
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    for source in sorted(SANDBOXED.glob("*.py")):
        shutil.copyfile(source, target / source.name)
        os.chmod(target / source.name, 0o644)


def start(info: sandbox.SandboxInfo, hidden: list[Path]) -> Server:
    """The server covering ``hidden``: an existing one (perhaps started by a parent process) or a new one."""
    with _lock:
        for server in _servers:
            if server.covers(info, hidden) and server.alive() and not server.dirty:
                return server
        _close_all()  # a grader serves one class at a time
        server = Server(info, tuple(sorted(p.resolve() for p in hidden)))
        _servers.append(server)
        return server


def get(info: sandbox.SandboxInfo, hidden: list[Path]) -> Client:
    """This process's client of a zygote that hides at least ``hidden``."""
    server = start(info, hidden)
    with _lock:
        client = _clients.get(id(server))
        if client is None or client.pid != os.getpid():
            client = _clients[id(server)] = server.connect()
        return client


@atexit.register
def _close_all() -> None:
    for client in _clients.values():
        client.control.close()
    for server in _servers:
        server.close()
    _clients.clear()
    _servers.clear()


def _clean_env() -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        # A fixed mmap threshold turns off glibc's sliding one: every block of 128 KiB or more is mapped
        # on its own and returned when freed, so peak memory (``fn.measured``) counts what the code holds,
        # not how fragmented the heap of this child happened to get (it varied by 70 MB between runs).
        "MALLOC_MMAP_THRESHOLD_": "131072",
    }
