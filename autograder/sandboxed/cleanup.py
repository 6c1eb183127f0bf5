"""After a child: kill everything it started and remove what it left (files, shared memory, IPC)."""

from __future__ import annotations

import os
import shutil
import signal


def kill_all_of(uid: int | None, pid: int, tmp: str, own_folder: str) -> None:
    """Kill a child and everything it started, then delete what it wrote.

    With a uid of its own, a killer process becomes that uid and signals every process it
    may (so no process of the child survives, whatever session it moved to), then removes
    every file of that uid at the top of ``tmp`` and /dev/shm and its System V IPC objects.
    Without (no sandbox), the child's process group is killed and ``own_folder`` removed.
    """
    if uid is None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        shutil.rmtree(own_folder, ignore_errors=True)
        return
    killer = os.fork()
    if killer == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except the caller
            for folder in (tmp, "/dev/shm"):
                _remove_files_of(uid, folder)
            _remove_ipc_of(uid)
        finally:
            os._exit(0)
    os.waitpid(killer, 0)


def _remove_files_of(uid: int, folder: str) -> None:
    """Delete every entry of ``uid`` at the top of ``folder``, making its folders writable first."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if entry.is_dir(follow_symlinks=False):
                for root, dirs, _ in os.walk(entry.path):  # a read-only folder would keep its files
                    for name in [".", *dirs]:
                        path = os.path.join(root, name)
                        if os.lstat(path).st_uid == uid and not os.path.islink(path):
                            os.chmod(path, 0o700)
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _remove_ipc_of(uid: int) -> None:
    """Remove the System V shared memory, message queues and semaphores ``uid`` created."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0

    def remove(kind: str, ident: int) -> None:
        if kind == "sem":
            libc.semctl(ident, 0, ipc_rmid)
        else:
            getattr(libc, f"{kind}ctl")(ident, ipc_rmid, None)

    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                header, *rows = table.read().splitlines()
        except OSError:
            continue
        columns = header.split()
        for row in rows:
            fields = dict(zip(columns, row.split(), strict=False))
            if fields.get("uid") == str(uid) or fields.get("cuid") == str(uid):
                remove(kind, int(fields.get("shmid") or fields.get("msqid") or fields.get("semid") or -1))


def temp_space_left(folder: str) -> float:
    """The fraction of ``folder``'s file system (blocks or inodes, whichever is scarcer) still free."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return 1.0
    blocks = stats.f_bavail / stats.f_blocks if stats.f_blocks else 1.0
    inodes = stats.f_favail / stats.f_files if stats.f_files else 1.0
    return min(blocks, inodes)
