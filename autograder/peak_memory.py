"""Peak memory of a child process, read by the grader from the kernel's accounting (``/proc``).

``reset_peak`` writes ``5`` to ``/proc/PID/clear_refs`` (the peak resident mark starts again
from now); ``status_kb(pid, "VmHWM")`` then reads the peak. The sandbox mounts ``/proc``
read-only for the child, so only the grader can reset the mark.
"""

from __future__ import annotations

import os


def reset_peak(pid: int) -> int | None:
    """Reset ``pid``'s peak-memory mark; its resident kB now, or None where that cannot be done."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return None
    return status_kb(pid, "VmRSS")


def status_kb(pid: int, key: str) -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM``: peak resident memory; ``VmRSS``: now)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def host_pid(pid: int, uid: int | None) -> int | None:
    """A child's process id as this process sees it, from its id in the zygote's PID namespace and its uid."""
    if uid is None:
        return pid or None
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
        if uids and int(uids[0]) == uid and nspids and int(nspids[-1]) == pid:
            return int(entry)
    return None
