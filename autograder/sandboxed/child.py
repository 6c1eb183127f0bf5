"""One submission's process, forked by the zygote: it drops privileges, writes the files, serves calls.

It speaks ``protocol.Channel`` frames on two private pipes. The submission's files come on
its own pipe after it has become the submission's uid, never through the zygote, whose
memory every later child inherits. Limits (memory, processes, file size, CPU time) are
lowered soft and hard together, so student code cannot raise them again.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
from typing import Any

from .protocol import EXIT_NO_SPACE, Channel
from .worker import Worker


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
    folder = child_folder(request)
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


def child_folder(request: dict[str, Any]) -> str:
    """Where a child writes its submission's files, in the zygote's temp folder."""
    return os.path.join(request["tmp"], f"submission-{request['id']}")
