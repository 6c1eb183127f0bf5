"""Grade many submissions in parallel: a class folder, or the validation set of a week.

The calling process imports torch and pytest and starts one zygote, then forks
``jobs`` grader processes, which grade submission after submission (each
submission still gets its own sandboxed child of the zygote). One broken
submission never stops the batch: whatever goes wrong is recorded as that
submission's error. ``grade_class`` can grade on a Dask cluster instead of the pool
(``autograder.scale``), with the same cache, results and gradebook.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from autograder import config
from autograder.jobs import Outcome, grade_one, grader_fingerprint, init_grader_process, submission_fingerprint
from autograder.results import GradeReport

CACHE_NAME = ".course-grade-cache.json"
REPORT_NAME = ".report.json"  # beside each results.json: the typed report a re-run reuses when nothing changed


def grade_many(
    week: config.Week,
    submissions: Iterable[tuple[str, Path]],
    *,
    jobs: int,
    extra_hidden: list[Path] | None = None,
    public: bool = False,
) -> Iterator[Outcome]:
    """Yield an ``Outcome`` per ``(name, folder)`` as each finishes (not in order).

    ``public`` runs the public tests (as ``course check`` does) instead of the hidden ones.
    """
    from autograder import grading, sandbox, zygote_client

    hidden = [str(p.resolve()) for p in extra_hidden or []]
    # Start the zygote first: it imports torch while this process does the same.
    zygote_client.start(sandbox.choose(), grading.hidden_paths(week, [Path(p) for p in hidden]))
    import torch  # noqa: F401  (imported once here, inherited by the forked graders)

    context = multiprocessing.get_context("fork")  # graders inherit torch, pytest and the zygote's registry
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context, initializer=init_grader_process) as pool:
        futures: dict[Future[GradeReport], tuple[str, Path]] = {
            pool.submit(grade_one, str(week.root), week.id, str(path), hidden, public): (name, path)
            for name, path in submissions
        }
        for future in as_completed(futures):
            name, path = futures[future]
            try:
                yield Outcome(name, path, future.result())
            except Exception as exc:  # the grader failed on this one; go on with the rest
                yield Outcome(name, path, None, error=f"{type(exc).__name__}: {exc}")


def grade_class(
    week: config.Week,
    class_dir: Path,
    gradebook: Path,
    *,
    jobs: int,
    on_done: Callable[[Outcome], None] | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    cluster_options: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Grade every subfolder of ``class_dir``; write results.json per student and the gradebook CSV.

    A submission whose files (and the grader) have not changed since the last run
    keeps its previous results. Each result, the cache and the gradebook are written
    atomically as results arrive, so an interrupted run loses nothing already graded and
    a re-run resumes where it stopped. ``scheduler`` (a Dask scheduler's address) or
    ``cluster`` (a kind of Dask cluster to start, with ``jobs`` workers) grades on Dask
    (``autograder.scale``) instead of the local pool of ``jobs`` processes.
    """
    out_dir = gradebook.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_path = out_dir / CACHE_NAME
    cache: dict[str, str] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    grader = grader_fingerprint(week)
    students = sorted((p.name, p) for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    outcomes: dict[str, Outcome] = {}  # one row per student, whatever the engine delivers
    todo: list[tuple[str, Path]] = []
    fingerprints = {name: submission_fingerprint(week, path, grader) for name, path in students}
    for name, path in students:
        report = _cached_report(out_dir / name) if cache.get(name) == fingerprints[name] else None
        if report is not None:
            outcome = Outcome(name, path, report, cached=True)
            outcomes[name] = outcome
            if on_done:
                on_done(outcome)
        else:
            todo.append((name, path))
    if scheduler is not None or cluster is not None:
        from autograder import scale

        stream = scale.grade_many(
            week,
            todo,
            fingerprints,
            grader=grader,
            scheduler=scheduler,
            cluster=cluster,
            cluster_options=cluster_options,
            workers=jobs,
        )
    else:
        stream = grade_many(week, todo, jobs=jobs, extra_hidden=[class_dir, out_dir])
    last_written = time.monotonic()
    for outcome in stream:
        if outcome.name in outcomes:
            continue  # already delivered once (an engine that retried it): the first result stands
        outcomes[outcome.name] = outcome
        if outcome.report is not None:
            (out_dir / outcome.name).mkdir(exist_ok=True)
            write_atomic(out_dir / outcome.name / REPORT_NAME, json.dumps(outcome.report.to_dict(), indent=1))
            write_atomic(out_dir / outcome.name / "results.json", json.dumps(outcome.report.to_gradescope(), indent=2))
            cache[outcome.name] = fingerprints[outcome.name]
        else:
            cache.pop(outcome.name, None)
        write_atomic(cache_path, json.dumps(cache, indent=2, sort_keys=True))
        if time.monotonic() - last_written > GRADEBOOK_EVERY_S:
            write_gradebook(gradebook, sorted(outcomes.values(), key=lambda o: o.name))
            last_written = time.monotonic()
        if on_done:
            on_done(outcome)
    write_atomic(cache_path, json.dumps(cache, indent=2, sort_keys=True))
    ordered = sorted(outcomes.values(), key=lambda o: o.name)
    write_gradebook(gradebook, ordered)
    return ordered


GRADEBOOK_EVERY_S = 2.0  # while grading, the gradebook (graded so far) is rewritten at most this often


def _cached_report(folder: Path) -> GradeReport | None:
    """The report a previous run wrote for this submission, or None (none, or unreadable)."""
    try:
        return GradeReport.from_dict(json.loads((folder / REPORT_NAME).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``: never half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_gradebook(path: Path, outcomes: list[Outcome]) -> None:
    """One row per student: totals, then one column per test."""
    test_names: list[str] = []
    for outcome in outcomes:
        for test in outcome.report.tests if outcome.report else []:
            if test.name not in test_names:
                test_names.append(test.name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["student", "score", "max_score", "percent", "tests_passed", "tests_total", "error", *test_names]
        )
        for outcome in outcomes:
            report = outcome.report
            tests = {t.name: t for t in report.tests} if report else {}
            score, max_score = (round(report.score, 4), round(report.max_score, 4)) if report else (0, 0)
            writer.writerow(
                [
                    outcome.name,
                    score,
                    max_score,
                    round(100 * score / max_score, 1) if max_score else 0,
                    sum(t.passed for t in tests.values()),
                    len(tests),
                    outcome.error or "",
                    *(round(tests[n].score, 4) if n in tests else "" for n in test_names),
                ]
            )
    os.replace(tmp, path)
