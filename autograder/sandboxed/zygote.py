"""The zygote: imports torch once, then forks one child per submission on request.

Started by the grader (``autograder/zygote_client.py``) inside the sandbox as
``python -I -B -c 'from sandboxed.zygote import main; main()' REGISTRY_FD`` with this
package's folder first on ``sys.path``.
"""

from __future__ import annotations

import io
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

from .child import child_folder, run_child
from .cleanup import kill_all_of, temp_space_left
from .instruments import OpRecorder
from .protocol import recv_message, send_message


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
            kill_all_of(uid, pid, request["tmp"], child_folder(request))
            if pid not in statuses:
                try:
                    statuses[pid] = os.waitpid(pid, 0)[1]
                except ChildProcessError:
                    pass
        status = statuses.pop(pid, None)
        reply["exit"] = None if status is None else os.waitstatus_to_exitcode(status)
        reply["temp_space_left"] = temp_space_left(request["tmp"])
    return reply


def main() -> None:
    """The entry point: ``sys.argv[1]`` is the registry socket's file descriptor."""
    zygote_main(int(sys.argv[1]))
