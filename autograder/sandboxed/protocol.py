"""The wire format between the grader and the sandbox: one framing implementation for both sides.

Calls and replies: an 8-byte big-endian length, then a ``torch.save`` payload, which the
receiver reads with ``torch.load(weights_only=True)`` so no side ever unpickles code.
Control messages to the zygote: a 4-byte length, then JSON, with file descriptors attached
as SCM_RIGHTS.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
from typing import Any

HEADER = struct.Struct(">Q")
CONTROL_HEADER = struct.Struct(">I")
REMOTE_KEY = "__remote__"  # a value that stays in the child: {REMOTE_KEY: handle, "type": name}
MAX_REPLY_BYTES = 512 * 2**20  # the grader refuses larger replies too
EXIT_NO_SPACE = 71  # a child could not write the submission's files: the grader's problem, not the student's


def frame(message: Any) -> bytes:
    """``message`` as one frame: its length, then its ``torch.save`` bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save(message, buffer)
    return HEADER.pack(buffer.tell()) + buffer.getvalue()


def frame_size(header: bytes) -> int:
    """The payload length a frame's header announces."""
    (size,) = HEADER.unpack(header)
    return int(size)


def load(payload: bytes) -> Any:
    """A frame's payload back as plain data (tensors, numbers, strings, lists, dicts): never code."""
    import torch

    return torch.load(io.BytesIO(payload), weights_only=True)


class Channel:
    """Blocking frames over two private file descriptors (the child's side)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.reader = os.fdopen(read_fd, "rb", buffering=0)
        self.write_fd = write_fd

    def recv(self) -> Any:
        header = self._read_exact(HEADER.size)
        if header is None:
            return None
        payload = self._read_exact(frame_size(header))
        return None if payload is None else load(payload)

    def send(self, message: Any) -> None:
        view = memoryview(frame(message))
        while view:
            view = view[os.write(self.write_fd, view) :]

    def _read_exact(self, size: int) -> bytes | None:
        chunks, remaining = [], size
        while remaining:
            chunk = self.reader.read(remaining)
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def send_message(control: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One control message: a 4-byte length and JSON, with ``fds`` attached to its first bytes."""
    data = json.dumps(message).encode()
    packed = CONTROL_HEADER.pack(len(data)) + data
    sent = socket.send_fds(control, [packed], fds) if fds else control.send(packed)
    if sent < len(packed):
        control.sendall(packed[sent:])


def recv_message(control: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """The next control message and the file descriptors attached to it; None when the peer is gone."""
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
