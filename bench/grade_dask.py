"""Dask against the local pool: the same class graded both ways with the same number of worker processes, one run.

    python bench/grade_dask.py [--n 200] [--workers 2] [--scaling]

Generates N week-01 submissions (copies of the example class's quick kinds: alice, bob, carol, dave,
frank, heidi, ivan; erin's and grace's timeouts would measure sleeping, not grading), then times:

* ``course grade-all --jobs W`` (the local pool of W grader processes), before and after Dask (the mean
  is its time, so a load drifting on a shared machine weighs on both);
* ``course grade-all --scheduler ADDR`` on a localhost cluster started here: a ``dask scheduler`` and W
  ``dask worker --nworkers 1 --nthreads 1`` processes, cold (each worker imports torch and starts its
  zygote on its first task, as the local pool does once), then again warm (a fresh output folder);

and prints each time, Dask's overhead per submission and the throughput ratio (target: Dask within 10%
of the local pool). ``--scaling`` also grades with 1 worker to show how throughput scales. Everything
grades a copy of week 01's course files (edits to the checkout during the run change nothing), and a
run whose gradebook has an error row stops instead of printing a timing.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KINDS = ["alice", "bob", "carol", "dave", "frank", "heidi", "ivan"]


def make_class(dest: Path, n: int) -> Path:
    for i, kind in zip(range(n), itertools.cycle(KINDS), strict=False):
        shutil.copytree(REPO / "examples" / "class-01" / kind, dest / f"{kind}{i:03d}")
    return dest


def course_copy(dest: Path) -> dict[str, str]:
    """Week 01's course files (as the Gradescope zip holds them) in ``dest``, and the environment that grades with
    them: a checkout edited while the benchmark runs would change the grader under the workers' feet."""
    sys.path.insert(0, str(REPO))
    from autograder import config
    from autograder.export import gradescope

    course = config.load(REPO)
    for name, content in gradescope.week_source_files(course, course.week("01")).items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_text(content)
    return {**os.environ, "COURSE_ROOT": str(dest), "PYTHONPATH": str(dest)}


def grade_all(env: dict[str, str], class_dir: Path, out: Path, *engine: str) -> float:
    gradebook = out / "gradebook.csv"
    cmd = [sys.executable, "-m", "autograder.cli", "grade-all", "01", str(class_dir), "--out", str(gradebook), *engine]
    start = time.perf_counter()
    subprocess.run(
        cmd, check=True, cwd=env["COURSE_ROOT"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    seconds = time.perf_counter() - start
    with gradebook.open() as handle:
        rows = list(csv.DictReader(handle))
    errors = [row["error"] for row in rows if row["error"]]
    if errors or len(rows) != len(list(class_dir.iterdir())):
        sys.exit(f"{' '.join(engine)}: {len(errors)} error rows of {len(rows)}, e.g. {errors[:1]}: not a valid timing")
    return seconds


class LocalhostCluster:
    """``dask scheduler`` and ``dask worker`` processes, as an instructor would start them on one machine."""

    def __init__(self, base: Path, workers: int, env: dict[str, str]) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        scheduler_file = base / "scheduler.json"
        env = {**env, "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
        self._spawn(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"]
            + ["--scheduler-file", str(scheduler_file)],
            env,
        )
        while not scheduler_file.is_file():
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            self._spawn(
                [str(BIN / "dask"), "worker", self.address, "--nworkers", "1", "--nthreads", "1"]
                + ["--dashboard-address", ":0", "--name", f"w{i}"],
                env,
            )
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)

    def _spawn(self, cmd: list[str], env: dict[str, str]) -> None:
        self.procs.append(
            subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=env["COURSE_ROOT"],
                start_new_session=True,
            )
        )

    def close(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def dask_times(env: dict[str, str], class_dir: Path, tmp: Path, workers: int) -> tuple[float, float]:
    base = tmp / f"dask{workers}"
    base.mkdir()
    cluster = LocalhostCluster(base, workers, env)
    try:
        cold = grade_all(env, class_dir, base / "cold", "--scheduler", cluster.address)
        warm = grade_all(env, class_dir, base / "warm", "--scheduler", cluster.address)
    finally:
        cluster.close()
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="submissions (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPU count)")
    parser.add_argument("--scaling", action="store_true", help="also grade with 1 worker (both engines)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="course-bench-dask-") as name:
        tmp = Path(name)
        env = course_copy(tmp / "course")
        class_dir = make_class(tmp / "class", args.n)
        counts = sorted({1, args.workers}) if args.scaling else [args.workers]
        # local, Dask, local again: the pool's time is the mean of the two, so a load that drifts during the
        # run (a shared machine) weighs on both engines alike
        before = {w: grade_all(env, class_dir, tmp / f"local{w}a", "--jobs", str(w)) for w in counts}
        dask = {w: dask_times(env, class_dir, tmp, w) for w in counts}
        after = {w: grade_all(env, class_dir, tmp / f"local{w}b", "--jobs", str(w)) for w in counts}
        local = {w: (before[w] + after[w]) / 2 for w in counts}

    n, w = args.n, args.workers
    print(f"{n} week-01 submissions, {w} worker processes, {os.cpu_count()} cores")
    print(
        f"local pool  (--jobs {w})            {local[w]:7.2f} s   {n / local[w]:5.2f} submissions/s"
        f"   (before {before[w]:.2f} s, after {after[w]:.2f} s)"
    )
    cold, warm = dask[w]
    print(f"Dask, cold  (--scheduler, {w} workers) {cold:7.2f} s   {n / cold:5.2f} submissions/s")
    print(f"Dask, warm  (same cluster again)     {warm:7.2f} s   {n / warm:5.2f} submissions/s")
    print(
        f"Dask overhead per submission:   cold {1000 * (cold - local[w]) / n:+6.1f} ms   warm {1000 * (warm - local[w]) / n:+6.1f} ms"
    )
    print(f"throughput ratio Dask / local:  cold {local[w] / cold:.3f}   warm {local[w] / warm:.3f}   (target >= 0.90)")
    if args.scaling and w > 1:
        print(
            f"scaling 1 -> {w} workers:        local {local[1] / local[w]:.2f}x   Dask (warm) {dask[1][1] / dask[w][1]:.2f}x"
        )


if __name__ == "__main__":
    main()
