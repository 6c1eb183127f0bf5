"""The bubblewrap command line: hidden folders are empty, Python still works for an unprivileged uid."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import sandbox
from tests.helpers import REPO

pytestmark = pytest.mark.sandbox


@pytest.fixture
def run_in_sandbox(tmp_path):
    if not sandbox.bwrap_works():
        pytest.skip("needs root and bubblewrap (as in CI)")
    workdir = tmp_path / "grader"
    workdir.mkdir()

    def run(hidden: list[Path], code: str) -> subprocess.CompletedProcess[str]:
        command = sandbox.bwrap_command([], workdir=workdir, hidden=hidden, tmp_size_mb=16)
        command = command[: command.index("--")]
        command += ["--", "setpriv", "--reuid=1234567", "--regid=65534", "--clear-groups"]
        command += [sys.executable, "-I", "-c", code]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    return run


def test_hidden_folders_are_empty_and_python_still_imports(run_in_sandbox, tmp_path):
    secret = tmp_path / "course" / "solutions"
    secret.mkdir(parents=True)
    (secret / "answer.py").write_text("ANSWER = 42\n")
    # Hide the folder that holds the virtual environment too, as when the course is cloned under /tmp.
    venv_parent = Path(sys.prefix).resolve().parent
    code = (
        "import json, os, colorsys, torch\n"
        f"print(json.dumps({{'uid': os.getuid(), 'course': os.path.exists({str(tmp_path / 'course')!r}), "
        f"'tmp': os.listdir('/tmp'), 'torch': torch.ones(2).sum().item()}}))"
    )
    result = run_in_sandbox([tmp_path / "course", venv_parent], code)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["uid"] == 1234567
    assert seen["course"] is False  # not there at all
    # Only the empty folders leading to hidden paths and the Python installation are there.
    leading = {
        p.relative_to("/tmp").parts[0] for p in (tmp_path, Path(sys.prefix).resolve()) if p.is_relative_to("/tmp")
    }
    assert set(seen["tmp"]) <= {"grader", *leading}
    assert seen["torch"] == 2.0


def test_no_network_and_read_only_root(run_in_sandbox, tmp_path):
    code = (
        "import socket\n"
        "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2); print('net')\nexcept OSError: print('no net')\n"
        "try:\n    open('/etc/owned', 'w'); print('wrote')\nexcept OSError: print('read-only')\n"
    )
    result = run_in_sandbox([tmp_path], code)
    assert result.stdout.split() == ["no", "net", "read-only"], result.stderr


SECRET_PLACES = [
    Path("/autograder/source/hidden_tests.py"),
    Path("/srv/course/answers.py"),
    Path("/opt/grading/key.txt"),
]


def test_only_the_allowlist_is_visible(run_in_sandbox, tmp_path):
    """Gradescope keeps the hidden tests at /autograder/source: nothing outside the allowlist can be read."""
    made = []
    try:
        for path in SECRET_PLACES:
            if path.exists():
                continue
            top = next(p for p in reversed(path.parents) if p != Path("/") and not p.exists())
            path.parent.mkdir(parents=True)
            path.write_text("SECRET = 4711\n")
            path.chmod(0o644)
            made.append(top)
        repository = REPO
        secrets = [*SECRET_PLACES, repository / "course.yml", repository / "solutions", repository / "autograder"]
        code = (
            "import json, os\n"
            f"places = {[str(p) for p in secrets]!r}\n"
            "print(json.dumps({'visible': [p for p in places if os.path.exists(p)], 'root': sorted(os.listdir('/'))}))"
        )
        result = run_in_sandbox([], code)
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
        assert seen["visible"] == []
        python_tops = {Path(p).resolve().parts[1] for p in (sys.prefix, sys.base_prefix, sys.executable)}
        allowed = {"usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "tmp", "dev", "proc", *python_tops}
        assert set(seen["root"]) <= allowed, set(seen["root"]) - allowed
    finally:
        for top in made:
            shutil.rmtree(top, ignore_errors=True)
