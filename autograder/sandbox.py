"""How the worker process is started: bubblewrap when we can, a plain process when not.

As root with ``bwrap`` installed (CI, Gradescope containers), the worker sees only
an allowlist of the file system, read-only: the system's programs and libraries,
/etc and the Python installation (no course repository, class or output folder,
home directory or /autograder), a fresh /tmp, no network, its own PID/IPC/UTS namespaces, and runs
as an unprivileged uid of its own (gid 65534, nogroup) with no capabilities. Without root or bubblewrap the
worker still runs in its own process with resource limits, and the grader says
once that files are not hidden.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534  # the group of every sandboxed child (nogroup)
# Each child runs as its own unprivileged uid from this range, handed out by the zygote (no passwd
# entry needed), so one submission's fork bomb cannot use up the process limit of another beside it.
SANDBOX_UID_BASE = 1_000_000
SANDBOX_UID_COUNT = 1_000_000
SANDBOX_ENV = "COURSE_SANDBOX"  # "auto" (default), "bwrap" (required) or "none"


@dataclass(frozen=True)
class SandboxInfo:
    """Which isolation the grader uses, in words for the report."""

    kind: str  # "bwrap" or "process"
    description: str


class SandboxUnavailable(RuntimeError):
    pass


def _python_paths() -> list[Path]:
    """Folders the worker's interpreter and torch need to be readable."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent}
    return sorted(paths)


def _is_under(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


# What the sandbox shows of the machine, read-only: the system's programs and libraries and /etc
# (the dynamic linker's cache, locale and time zone data). Nothing else of the host's file system
# is there: no /home, /root, /srv, /opt, /mnt, no /autograder (where Gradescope keeps its hidden
# tests), no course checkout, no class folder; only the Python installation is bound back.
SYSTEM_PATHS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def bwrap_command(
    python_args: list[str],
    *,
    workdir: Path,
    hidden: list[Path],
    tmp_size_mb: int,
    switches_uid: bool = True,
) -> list[str]:
    """The bubblewrap command line that runs ``python -I -B *python_args`` with ``workdir`` at /tmp/grader.

    The zygote is ``-c START_ZYGOTE /tmp/grader FD`` (``zygote_client.py``), the kernel compile
    ``/tmp/grader/triton_aot.py ...`` (``kernel_source.py``).

    ``switches_uid``: keep the two capabilities the zygote needs to give each child its own uid;
    without it the process keeps none.

    The root is an empty tmpfs holding only an allowlist, read-only: ``SYSTEM_PATHS``, the
    Python installation (its prefix, base prefix and interpreter folder) and ``workdir``
    (holding the ``sandboxed`` package) at /tmp/grader; /tmp is a fresh, size-limited tmpfs. ``hidden``
    paths are never bound (a Python installation inside one, e.g. a virtual environment in
    the course checkout, is bound alone, without the rest of the folder).
    """
    cmd = ["bwrap", "--tmpfs", "/"]
    for name in SYSTEM_PATHS:
        path = Path(name)
        if path.is_symlink():  # /bin -> usr/bin on merged-/usr systems
            cmd += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            cmd += ["--ro-bind", name, name]
    # /tmp first: a Python installation inside it (a clone under /tmp) is then bound on top.
    cmd += ["--perms", "1777", "--size", str(tmp_size_mb * 2**20), "--tmpfs", "/tmp"]
    system = [Path(name) for name in SYSTEM_PATHS]
    python = [p for p in _python_paths() if not any(_is_under(p, root) for root in system)]
    python = [p for p in python if not any(q != p and _is_under(p, q) for q in python)]  # outermost only
    made: set[Path] = set()
    for path in python:
        for folder in reversed(path.parents):  # 0755 folders leading to it (bwrap would make them 0700)
            if folder not in (Path("/"), Path("/tmp")) and folder not in made and folder not in python:
                cmd += ["--perms", "0755", "--dir", str(folder)]
                made.add(folder)
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--ro-bind", str(workdir), "/tmp/grader"]
    # /proc read-only: a child cannot reset its own peak-memory mark (clear_refs), which the grader reads.
    cmd += ["--dev", "/dev", "--proc", "/proc", "--remount-ro", "/proc"]
    cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    cmd += ["--die-with-parent", "--new-session", "--chdir", "/tmp"]
    # The zygote keeps only the capabilities it needs to switch each child to its own uid.
    cmd += ["--cap-drop", "ALL"]
    if switches_uid:
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    cmd += ["--", sys.executable, "-I", "-B", *python_args]
    return cmd


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """True when bubblewrap exists, we are root, and a trial run succeeds."""
    if os.geteuid() != 0 or not shutil.which("bwrap"):
        return False
    trial = [
        "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--unshare-pid", "--unshare-net", "--die-with-parent",
        "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "true",
    ]  # fmt: skip
    try:
        return subprocess.run(trial, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose() -> SandboxInfo:
    """Pick the isolation from ``$COURSE_SANDBOX`` and what this machine offers."""
    wanted = os.environ.get(SANDBOX_ENV, "auto")
    if wanted not in ("auto", "bwrap", "none"):
        raise SandboxUnavailable(f"{SANDBOX_ENV} must be auto, bwrap or none, not {wanted!r}")
    if wanted != "none" and bwrap_works():
        return SandboxInfo(
            "bwrap",
            "bubblewrap sandbox: read-only root, hidden course files, no network, own PID namespace, unprivileged uid",
        )
    if wanted == "bwrap":
        raise SandboxUnavailable(
            "COURSE_SANDBOX=bwrap but bubblewrap cannot run here (it needs root and `bwrap`; "
            "install the Debian package `bubblewrap`)"
        )
    reason = "disabled by COURSE_SANDBOX=none" if wanted == "none" else "needs root and bubblewrap"
    _warn_once(
        f"student code runs in a separate process with limits, but without a file-system sandbox ({reason}): "
        "it can read files this user can read. Grade as root with bubblewrap for full isolation."
    )
    return SandboxInfo("process", f"separate process with resource limits, no file-system sandbox ({reason})")


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)
