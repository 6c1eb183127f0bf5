"""How the worker process is started: bubblewrap when we can, a plain process when not.

As root with ``bwrap`` installed (CI, Gradescope containers), the worker gets a
read-only root file system, fresh tmpfs over every hidden path (the course
repository with its solutions and hidden tests, the class folder, the output
folder, root's home, /tmp), no network, its own PID/IPC/UTS namespaces, and runs
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


def bwrap_command(
    worker_args: list[str],
    *,
    workdir: Path,
    hidden: list[Path],
    tmp_size_mb: int,
) -> list[str]:
    """The bubblewrap command line that runs the zygote, ``python worker.py ...``.

    Every path in ``hidden`` (and root's home, /tmp and /var/tmp) becomes an empty
    tmpfs; the Python installation is bound back read-only where it lies inside
    one (a virtual environment inside the course repository, a clone under /tmp);
    ``workdir`` (holding ``worker.py``) appears read-only at /tmp/grader.
    """
    tmp = Path("/tmp")
    home = Path(os.path.expanduser("~")).resolve()
    hide = {p.resolve() for p in hidden} | {home, tmp, Path("/var/tmp")}
    hide = {p for p in hide if p.exists() and p != Path("/")}
    rebind = {p for p in _python_paths() if any(_is_under(p, h) for h in hide)}
    rebind = {p for p in rebind if not any(q != p and _is_under(p, q) for q in rebind)}  # outermost only
    cmd = ["bwrap", "--ro-bind", "/", "/"]
    made: set[Path] = set()
    # Parents before children; each mount inside a hidden folder first gets its parents
    # as 0755 folders (bwrap would make them 0700, which the child's uid cannot enter).
    for path in sorted(hide | rebind, key=lambda p: (len(p.parts), str(p))):
        covering = [h for h in hide if h != path and _is_under(path, h)]
        if covering:
            top = min(covering, key=lambda h: len(h.parts))
            for folder in reversed(path.parents):
                if _is_under(folder, top) and folder != top and folder not in made | hide | rebind:
                    cmd += ["--perms", "0755", "--dir", str(folder)]
                    made.add(folder)
        if path in rebind:
            cmd += ["--ro-bind", str(path), str(path)]
        elif path == tmp:
            cmd += ["--perms", "1777", "--size", str(tmp_size_mb * 2**20), "--tmpfs", str(tmp)]
        else:
            cmd += ["--perms", "0755", "--tmpfs", str(path)]
    cmd += ["--ro-bind", str(workdir), "/tmp/grader"]
    cmd += ["--dev", "/dev", "--proc", "/proc"]
    cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    cmd += ["--die-with-parent", "--new-session", "--chdir", "/tmp"]
    # The zygote keeps only the capabilities it needs to switch each child to its own uid.
    cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    cmd += ["--", sys.executable, "-I", "-B", "/tmp/grader/worker.py", *worker_args]
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
