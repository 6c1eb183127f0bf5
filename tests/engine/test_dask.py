"""`course grade-all --scheduler`: a real Dask cluster on localhost (a `dask scheduler` and two `dask worker`
processes) grades the example class exactly as the local pool does, and survives a worker killed mid-run.

The cluster and every `course` command run on a copy of the course (week 01's files, as the Gradescope zip
holds them), so the grader's fingerprint cannot change under the test while others edit the checkout.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autograder import batch, config, scale
from autograder.export import gradescope
from tests.helpers import REPO

pytest.importorskip("distributed")

WEEK = "01-attention"
CLASS = REPO / "examples" / "class-01"
BIN = Path(sys.executable).parent


def course_copy(dest: Path) -> Path:
    course = config.load(REPO)
    for name, content in gradescope.week_source_files(course, course.week(WEEK)).items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_text(content)
    return dest


class Cluster:
    """A `dask scheduler` and `dask worker` processes, each in its own process group (killed as a whole)."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base = base
        self.env = env
        self.scheduler_file = base / "scheduler.json"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.scheduler = self._spawn(
            "scheduler",
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"],
        )
        self.scheduler_file_args = ["--scheduler-file", str(self.scheduler_file)]
        deadline = time.monotonic() + 60
        while not self.scheduler_file.is_file():
            assert self.scheduler.poll() is None, (base / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written, then flushed
        self.address: str = json.loads(self.scheduler_file.read_text())["address"]

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = (self.base / f"{name}.log").open("ab")
        if name == "scheduler":
            cmd += ["--scheduler-file", str(self.scheduler_file)]
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.env["COURSE_ROOT"], start_new_session=True
        )

    def add_worker(self) -> None:
        index = len(self.workers)
        self.workers.append(
            self._spawn(
                f"worker{index}",
                [str(BIN / "dask"), "worker", "--scheduler-file", str(self.scheduler_file)]
                + ["--nworkers", "1", "--nthreads", "1", "--dashboard-address", ":0", "--name", f"w{index}"],
            )
        )

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout="30s")

    def wait_for_workers(self, count: int) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=60)

    def kill_group(self, pid: int) -> None:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            self.kill_group(proc.pid)  # the zygotes go with their workers (bubblewrap's --die-with-parent)
            proc.wait(timeout=30)


def test_a_packed_submission_unpacks_to_what_the_grader_reads(tmp_path, week01):
    from autograder.submission_files import read_submission

    folder = tmp_path / "class" / "ann"
    folder.mkdir(parents=True)
    (folder / "attention.py").write_text("x = 1\n")
    (folder / "report.md").write_bytes(b"\x00\x01 bytes")
    with (folder / "huge.bin").open("wb") as handle:
        handle.truncate(week01.limits.max_file_mb * 2**20 + 1)  # over the limit: never read
    (folder / "link.py").symlink_to(folder / "attention.py")  # never followed
    (folder / "dangling.py").symlink_to(tmp_path / "nowhere")
    (folder / "sub").mkdir()
    copy = tmp_path / "worker" / "ann"
    scale.unpack(scale.pack(week01, folder), copy)
    names = ["attention.py", "report.md", "huge.bin", "link.py", "dangling.py", "sub", "missing.py"]
    limit = week01.limits.max_file_mb
    assert read_submission(names, copy, limit) == read_submission(names, folder, limit)
    assert {n: (copy / n).is_file() for n in names} == {n: (folder / n).is_file() for n in names}


def test_grade_all_refuses_a_scheduler_and_a_cluster_at_once(capsys):
    from autograder import cli

    code = cli.main(["grade-all", "01", str(CLASS), "--scheduler", "tcp://127.0.0.1:1", "--cluster", "local"])
    assert code == 2
    assert "--cluster (start one)" in capsys.readouterr().err


def test_a_cluster_kind_without_its_package_says_which_extra_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_jobqueue(name, *args, **kwargs):
        if name.startswith("dask_jobqueue"):
            raise ImportError("No module named 'dask_jobqueue'", name="dask_jobqueue")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jobqueue)
    with pytest.raises(scale.ScaleError, match=r"pip install -e '\.\[slurm\]'"):
        scale.make_cluster("slurm", 4, {})
    with pytest.raises(scale.ScaleError, match="unknown cluster kind"):
        scale.make_cluster("mesos", 4, {})


@pytest.fixture(scope="module")
def course_env(tmp_path_factory) -> dict[str, str]:
    root = course_copy(tmp_path_factory.mktemp("course"))
    env = {**os.environ, "COURSE_ROOT": str(root), "PYTHONPATH": f"{root}{os.pathsep}{REPO}"}
    # A task is declared bad after 2 worker deaths instead of Dask's default 4: the KilledWorker test is quicker.
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"
    env["DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION"] = "1.0"  # as the README says: one task per worker at a time
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, course_env) -> Any:
    cluster = Cluster(tmp_path_factory.mktemp("dask"), course_env)
    try:
        cluster.add_worker()
        cluster.add_worker()
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.close()


def grade_all(env: dict[str, str], class_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "autograder.cli", "grade-all", WEEK, str(class_dir), "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=env["COURSE_ROOT"], timeout=300)


def gradebook_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def scores(out_dir: Path, names: list[str]) -> dict[str, Any]:
    """Each student's total and per-test scores and statuses (feedback text may differ: a memory bomb's timing)."""
    found = {}
    for name in names:
        results = json.loads((out_dir / name / "results.json").read_text())
        found[name] = (results["score"], [(t["name"], t["score"], t["status"]) for t in results["tests"]])
    return found


@pytest.fixture(scope="module")
def local_scores(tmp_path_factory, course_env) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local") / "gradebook.csv"
    result = grade_all(course_env, CLASS, out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    return scores(out.parent, sorted(p.name for p in CLASS.iterdir() if p.is_dir()))


@pytest.mark.slow
def test_the_cluster_grades_every_student_as_the_local_pool_does(cluster, course_env, local_scores, tmp_path):
    out = tmp_path / "dask" / "gradebook.csv"
    result = grade_all(course_env, CLASS, out, "--scheduler", cluster.address)
    assert result.returncode == 0, result.stderr
    assert f"with the Dask scheduler at {cluster.address}" in result.stdout
    rows = gradebook_rows(out)
    assert [r["student"] for r in rows] == sorted(local_scores)
    assert all(r["error"] == "" for r in rows), [r["error"] for r in rows]
    assert scores(out.parent, sorted(local_scores)) == local_scores
    assert local_scores["alice"][0] == 24.5
    assert 0 < local_scores["bob"][0] < 24.5

    again = grade_all(course_env, CLASS, out, "--scheduler", cluster.address)  # a re-run resumes: nothing regraded
    assert again.returncode == 0, again.stderr
    assert f"{len(rows)} submissions (0 graded, {len(rows)} unchanged)" in again.stdout
    assert gradebook_rows(out) == rows


def crashing_grader(root: str, week_id: str, name: str, packed: Any, grader: str, public: bool = False) -> Any:
    """Stands in for `scale.grade_on_worker`: a submission whose grading kills the worker process every time."""
    if name.startswith("crash"):
        os._exit(1)
    from autograder.results import GradeReport, TestResult

    return GradeReport(week_id, [TestResult("test_ok", 1.0, 1.0, True, "passed")], 0.0, "none")


@pytest.mark.slow
def test_a_submission_that_kills_its_worker_every_time_is_an_error_row(cluster, tmp_path, monkeypatch, week01):
    class_dir = tmp_path / "class"
    for name in ("ann", "crash-cat", "dan"):
        (class_dir / name).mkdir(parents=True)
    monkeypatch.setattr(scale, "grade_on_worker", crashing_grader)
    gradebook = tmp_path / "out" / "gradebook.csv"
    started = time.monotonic()
    outcomes = batch.grade_class(week01, class_dir, gradebook, jobs=2, scheduler=cluster.address)
    assert time.monotonic() - started < 60
    assert [o.name for o in outcomes] == ["ann", "crash-cat", "dan"]
    rows = {r["student"]: r for r in gradebook_rows(gradebook)}
    assert "killed the Dask worker running it, 2 times" in rows["crash-cat"]["error"]
    assert "KilledWorker" in rows["crash-cat"]["error"]
    assert rows["ann"]["error"] == rows["dan"]["error"] == ""
    assert not (gradebook.parent / "crash-cat" / "results.json").exists()
    cache = json.loads((gradebook.parent / batch.CACHE_NAME).read_text())
    assert sorted(cache) == ["ann", "dan"]  # a re-run tries the crashing one again
    cluster.wait_for_workers(2)  # the nannies restart the killed workers


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_no_student_and_grades_none_twice(cluster, course_env, local_scores, tmp_path):
    class_dir = tmp_path / "class"
    quick = ["alice", "bob", "carol", "dave", "heidi", "ivan"]  # not erin's and grace's long timeouts
    names = [f"{name}{i}" for i in range(2) for name in quick]
    for name in names:
        shutil.copytree(CLASS / name[:-1], class_dir / name)
    out = tmp_path / "out" / "gradebook.csv"
    cmd = [sys.executable, "-m", "autograder.cli", "grade-all", WEEK, str(class_dir), "--out", str(out)]
    run = subprocess.Popen(
        [*cmd, "--scheduler", cluster.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=course_env,
        cwd=course_env["COURSE_ROOT"],
    )
    killed = None
    with cluster.client() as client:
        deadline = time.monotonic() + 120
        while killed is None and run.poll() is None and time.monotonic() < deadline:
            done = len(list(out.parent.glob("*/results.json"))) if out.parent.is_dir() else 0
            busy = [worker for worker, keys in client.processing().items() if keys]
            if done >= 2 and len(busy) == 2:  # both warm and both grading: kill one mid-task
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                cluster.kill_group(pid)
                killed = busy[0]
            time.sleep(0.05)
    stdout, stderr = run.communicate(timeout=180)
    assert killed is not None, "no moment with both workers busy: " + stderr
    with cluster.client() as client:
        assert killed not in client.scheduler_info()["workers"]  # gone for good: its tasks ran on the other
    assert run.returncode == 0, stderr
    rows = gradebook_rows(out)
    assert [r["student"] for r in rows] == sorted(names)  # each exactly once
    assert all(r["error"] == "" for r in rows), [r["error"] for r in rows]
    graded = scores(out.parent, names)
    assert {name: graded[name] for name in names} == {name: local_scores[name[:-1]] for name in names}
