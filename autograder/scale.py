"""Grading past one machine: ``course grade-all ... --scheduler tcp://HOST:8786`` or ``--cluster KIND``.

The engine is Dask distributed (``pip install -e '.[scale]'``), imported only when
one of those flags is given: the local process pool stays the default. One Dask task per submission: the task carries the submission's files
(so workers need no shared file system); on the worker, its grading process (spawned
once per worker, so no Dask thread shares its interpreter) writes them into a private
temporary folder and calls ``jobs.grade_one``, the function every local grader
process calls, with its own zygote and sandbox. Results stream back
as they finish (``distributed.as_completed``) into ``batch.grade_class``, which
writes each ``results.json``, the cache and the gradebook atomically as they arrive.

Faults: when a worker dies mid-task, the scheduler gives its tasks to other workers
(a task is retried up to ``distributed.scheduler.allowed-failures`` times, 3 by
default); the gradebook keeps one row per student whatever happens. A submission that
kills the grading process gets an error at once (and the worker a fresh process); one
that kills whole workers every time ends as ``KilledWorker``, reported as that student's
error. A worker whose course differs from the instructor's (another
version of the hidden tests or the engine) refuses to grade rather than grade wrong.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from autograder import config
from autograder.results import GradeReport

CLUSTER_KINDS = ("local", "ssh", "slurm", "kubernetes")
EXTRAS = {"local": "scale", "ssh": "scale", "slurm": "slurm", "kubernetes": "kubernetes"}

# One grading at a time per worker process, in its one grading process. Start workers with `--nthreads 1`
# (more threads only queue here) and as many worker processes as cores.
_grading_lock = threading.Lock()
_warm = False

Packed = list[tuple[str, str, bytes]]  # (name, kind, data): kind "file", "big" (over the size limit), "link"


class ScaleError(RuntimeError):
    """Dask is not installed, the scheduler cannot be reached, or a cluster spec is wrong."""


class WorkerMismatch(RuntimeError):
    """The worker's course (hidden tests, reference, engine, course.yml) differs from the instructor's."""


def pack(week: config.Week, folder: Path) -> Packed:
    """The top-level entries of a submission folder, as the local grader would see them.

    Regular files travel whole; those over ``max_file_mb`` (which the grader never reads)
    and symlinks (never followed) travel as markers, so the worker's folder answers the same
    questions: present or missing, readable or not. Sub-folders are never read.
    """
    limit = week.limits.max_file_mb * 2**20
    packed: Packed = []
    if not folder.is_dir():
        return packed
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            packed.append((path.name, "link", b"file" if path.is_file() else b""))
        elif path.is_file():
            size = path.stat().st_size
            packed.append(
                (path.name, "big", str(size).encode()) if size > limit else (path.name, "file", path.read_bytes())
            )
    return packed


def unpack(packed: Packed, folder: Path) -> None:
    folder.mkdir(parents=True)
    target = folder.parent / ".link-target"
    for name, kind, data in packed:
        if "/" in name or name in ("", ".", ".."):
            continue
        path = folder / name
        if kind == "file":
            path.write_bytes(data)
        elif kind == "big":
            with path.open("wb") as handle:
                handle.truncate(int(data))  # sparse: as big as the original, so still over the limit
        elif kind == "link":
            if data == b"file" and not target.exists():
                target.write_bytes(b"")
            os.symlink(target if data == b"file" else folder.parent / ".missing", path)


def _worker_root(root: str) -> Path:
    """The course on this worker: ``$COURSE_ROOT``, else the instructor's path where it exists here, else the nearest."""
    if os.environ.get(config.ROOT_ENV):
        return Path(os.environ[config.ROOT_ENV])
    if (Path(root) / config.CONFIG_NAME).is_file():
        return Path(root)
    return config.find_root()


def grade_on_worker(
    root: str, week_id: str, name: str, packed: Packed, grader: str, public: bool = False
) -> GradeReport:
    """A Dask task: grade one submission on this worker exactly as a local grader process does.

    The grading runs in this worker's grading process (:func:`_grading_pool`), never in the Dask
    worker's own threads. If that process dies (the grader ran out of memory, a crash), the
    submission gets the error and the next one a fresh process.
    """
    with _grading_lock:
        pool = _grading_pool()
        try:
            with _children_allowed():
                future = pool.submit(grade_packed, root, week_id, name, packed, grader, public)
            return future.result()
        except BrokenProcessPool:
            _close_pool()
            raise GradingProcessDied(
                "the grading process died while grading this submission (out of memory or a crash); "
                "grade it alone with `course grade` to see why"
            ) from None


class GradingProcessDied(RuntimeError):
    pass


_pool: ProcessPoolExecutor | None = None


def _grading_pool() -> ProcessPoolExecutor:
    """This worker's grading process: a fresh interpreter (spawned, so no Dask thread shares its GIL
    or crosses a fork) that imports torch and starts its zygote once, then grades submission after
    submission, as each process of the local pool does."""
    global _pool
    if _pool is None:
        context = multiprocessing.get_context("spawn")
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_init_grading_process)
    return _pool


@contextmanager
def _children_allowed() -> Iterator[None]:
    """Dask's worker processes are daemonic (by default), and multiprocessing refuses children to those:
    the grading process is ours to end (``_close_pool``, and it dies with the worker), so allow it."""
    config_: dict[str, Any] = getattr(multiprocessing.current_process(), "_config", {})
    daemon = config_.get("daemon")
    config_["daemon"] = False
    try:
        yield
    finally:
        if daemon is not None:
            config_["daemon"] = daemon
        else:
            config_.pop("daemon", None)


def _close_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def _init_grading_process() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    try:  # die with the Dask worker, whatever kills it (Linux)
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def grade_packed(root: str, week_id: str, name: str, packed: Packed, grader: str, public: bool) -> GradeReport:
    """In the grading process: check the course is the instructor's, unpack the files, ``jobs.grade_one``."""
    global _warm
    from autograder import jobs

    course_root = _worker_root(root)
    week = config.load(course_root).week(week_id)
    if not _warm:  # the first submission here: start the zygote, which imports torch while this process does
        from autograder import grading, sandbox, zygote_client

        zygote_client.start(sandbox.choose(), grading.hidden_paths(week))
        jobs.init_grader_process()
        _warm = True
    # 5 ms: checked for every submission, so a worker of a course updated in place (a shared file system) agrees
    if jobs.grader_fingerprint(week) != grader:
        raise WorkerMismatch(
            f"worker {os.uname().nodename} has a different course at {course_root} (hidden tests, reference, "
            "engine or course.yml differ from the instructor's): install the same course version on every worker "
            "and restart the workers after updating it"
        )
    with tempfile.TemporaryDirectory(prefix="course-dask-") as tmp:
        folder = Path(tmp) / name
        unpack(packed, folder)
        return jobs.grade_one(str(course_root), week_id, str(folder), [], public)


def load_cluster_options(path: Path | None) -> dict[str, Any]:
    """Keyword arguments for the cluster class, from a YAML file (``--cluster-config``)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ScaleError(f"cannot read the cluster config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ScaleError(f"{path}: expected a mapping of keyword arguments for the cluster, got {data!r}")
    return data


def make_cluster(kind: str, workers: int, options: dict[str, Any]) -> Any:
    """A Dask cluster of ``workers`` single-threaded worker processes, started here; closed by the caller.

    ``local``: this machine (``distributed.LocalCluster``). ``ssh``: ``distributed.SSHCluster``
    (options: ``hosts``, the first being the scheduler's, ``connect_options``, ``worker_options``...).
    ``slurm``: ``dask_jobqueue.SLURMCluster`` (``queue``, ``cores``, ``memory``, ``walltime``...),
    scaled to ``workers``. ``kubernetes``: ``dask_kubernetes.operator.KubeCluster`` (``name``,
    ``image``, ``resources``...), scaled to ``workers``.
    """
    if kind not in CLUSTER_KINDS:
        raise ScaleError(f"unknown cluster kind {kind!r}: expected one of {', '.join(CLUSTER_KINDS)}")
    try:
        if kind == "local":
            import distributed

            local: Any = distributed.LocalCluster  # untyped
            return local(
                **{"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
                | options
            )
        if kind == "ssh":
            from distributed import SSHCluster

            worker_options = {"nthreads": 1, **options.pop("worker_options", {})}
            return SSHCluster(**{"worker_options": worker_options} | options)
        if kind == "slurm":
            from dask_jobqueue import SLURMCluster

            cluster = SLURMCluster(**{"cores": 1, "processes": 1} | options)
        else:
            from dask_kubernetes.operator import KubeCluster

            cluster = KubeCluster(**{"name": "course-grading"} | options)
    except ImportError as exc:
        raise ScaleError(
            f"--cluster {kind} needs {exc.name or 'its Dask package'}: pip install -e '.[{EXTRAS[kind]}]'"
        ) from None
    cluster.scale(workers)
    return cluster


def zygote_cleanup_plugin() -> Any:
    """A Dask worker plugin that ends the worker's grading process (and its zygote) when the worker shuts down."""
    from distributed import WorkerPlugin

    class ZygoteCleanup(WorkerPlugin):
        name = "course-zygote-cleanup"

        def teardown(self, worker: Any) -> None:
            from autograder import scale

            scale._close_pool()  # the grading process exits, and its zygote with it

    return ZygoteCleanup()


def grade_many(
    week: config.Week,
    submissions: Iterable[tuple[str, Path]],
    fingerprints: dict[str, str],
    *,
    grader: str,
    scheduler: str | None = None,
    cluster: str | None = None,
    cluster_options: dict[str, Any] | None = None,
    workers: int = 1,
    public: bool = False,
) -> Iterator[Any]:
    """Yield a ``jobs.Outcome`` per submission as each finishes on the cluster (not in order).

    ``scheduler``: the address of a running Dask scheduler; or ``cluster``: a kind from
    ``CLUSTER_KINDS`` started (and stopped) here with ``workers`` workers.
    """
    from autograder.jobs import Outcome

    try:
        import distributed
        from distributed.scheduler import KilledWorker
    except ImportError:
        raise ScaleError("grading on a Dask cluster needs `distributed`: pip install -e '.[scale]'") from None
    dd: Any = distributed  # partly typed: its Client and as_completed are not
    if (scheduler is None) == (cluster is None):
        raise ScaleError("give either a scheduler address or a cluster kind")
    submissions = list(submissions)
    if not submissions:
        return  # everything unchanged: no cluster to start or reach
    with ExitStack() as stack:
        if cluster is not None:
            address: Any = stack.enter_context(make_cluster(cluster, workers, dict(cluster_options or {})))
        else:
            address = scheduler
        try:
            client = stack.enter_context(dd.Client(address, timeout="30s"))
        except OSError as exc:
            raise ScaleError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        client.register_plugin(zygote_cleanup_plugin())
        futures = {}
        for name, path in submissions:
            future = client.submit(
                grade_on_worker,
                str(week.root),
                week.id,
                name,
                pack(week, path),
                grader,
                public,
                key=f"course-grade-{week.id}-{name}-{fingerprints[name][:16]}",  # same files, same task
                pure=False,
                retries=0,  # a grading error is the submission's; a dead worker is retried by the scheduler
            )
            futures[future] = (name, path)
        for future in dd.as_completed(futures):
            name, path = futures.pop(future)
            try:
                yield Outcome(name, path, future.result())
            except KilledWorker as exc:
                tries = int(exc.allowed_failures) + 1 if len(exc.args) > 2 else "several"
                yield Outcome(
                    name,
                    path,
                    None,
                    error=(
                        f"grading this submission killed the Dask worker running it, {tries} times on different "
                        "workers (KilledWorker); not retried again: grade it alone with `course grade` to see why"
                    ),
                )
            except Exception as exc:  # the grader failed on this one; go on with the rest
                yield Outcome(name, path, None, error=f"{type(exc).__name__}: {exc}")
            finally:
                future.release()
