"""Reading what a student handed in, and what their code printed, with limits."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from autograder import safe_text


@dataclass
class OutputTail:
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
