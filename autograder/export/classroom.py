"""GitHub Classroom: an autograding workflow for the student edition, and a grading workflow for instructors.

* ``student_workflow``: ``.github/workflows/classroom.yml`` in the student edition (``course release
  --student DIR --classroom``). On every push it installs the course and runs ``course check NN``
  for each week, the public tests only, through GitHub Classroom's command grader: a week's step
  passes when every public check passes. Nothing secret is in the student's repository.
* ``instructor_workflow``: ``.github/workflows/grade-class.yml`` for the instructors' private
  repository (``course export github-classroom --out DIR``). Run by hand (workflow_dispatch) with
  a week and the Classroom assignment's repository prefix: it clones every student's repository
  of the organisation with a token, copies each one's regular files of that week's folder (no
  symlinks), and grades them with the hidden tests (``course grade-all``, bubblewrap under sudo),
  uploading the gradebook and every results.json as an artifact. The hidden tests never leave the
  private repository's runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from autograder.config import Course

CHECK_COMMAND = "course check {number:02d} | tee check-{number:02d}.txt && grep -Eq '^([0-9]+)/\\1 public checks pass' check-{number:02d}.txt"
TORCH_CPU = "https://download.pytorch.org/whl/cpu"  # the CPU wheels: no 2 GB of CUDA libraries on every push


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Multi-line strings (the steps' scripts) as YAML literal blocks, as one writes them by hand."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def _dump(header: str, data: dict[str, Any]) -> str:
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000)
    return header + text


def student_workflow(course: Course) -> str:
    """GitHub Classroom's autograding workflow: one command-grader step per week, public checks only."""
    steps: list[dict[str, Any]] = [
        {"name": "Checkout code", "uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
        {
            "name": "Install the course",
            "run": (
                "python -m venv .venv\n"
                f".venv/bin/pip install --quiet --extra-index-url {TORCH_CPU} -e .\n"
                'echo "$PWD/.venv/bin" >> "$GITHUB_PATH"\n'
            ),
        },
    ]
    runners = []
    reporter_env = {}
    for week in course.weeks:
        step_id = f"week-{week.number:02d}"
        runners.append(step_id)
        reporter_env[f"{step_id.upper()}_RESULTS"] = f"${{{{steps.{step_id}.outputs.result}}}}"
        steps.append(
            {
                "name": f"week {week.id}",
                "id": step_id,
                "uses": "education/autograding-command-grader@v1",
                "with": {
                    "test-name": f"week {week.id}: public checks (course check {week.number:02d})",
                    "command": CHECK_COMMAND.format(number=week.number),
                    "timeout": 10,
                    "max-score": 1,
                },
            }
        )
    steps.append(
        {
            "name": "Autograding Reporter",
            "uses": "education/autograding-grader-reporter@v1",
            "env": reporter_env,
            "with": {"runners": ",".join(runners)},
        }
    )
    workflow = {
        "name": "Autograding Tests",
        "on": ["push", "workflow_dispatch", "repository_dispatch"],
        "permissions": {"checks": "write", "actions": "read", "contents": "read"},
        "jobs": {
            "run-autograding-tests": {
                "runs-on": "ubuntu-latest",
                "if": "github.actor != 'github-classroom[bot]'",
                "steps": steps,
            }
        },
    }
    return _dump(
        "# GitHub Classroom autograding: the public checks of every week (`course check NN`) on each push.\n"
        "# A week scores its point when all its public checks pass; your grade comes from the hidden tests.\n",
        workflow,
    )


FETCH = """mkdir -p checkouts
gh repo list "$ORG" --limit 4000 --json name --jq '.[].name' | grep "^$ASSIGNMENT-" | while read -r repo; do
  gh repo clone "$ORG/$repo" "checkouts/${repo#"$ASSIGNMENT"-}" -- --depth 1 --quiet
done
"""

COLLECT = """id=$(.venv/bin/python -c 'import sys; from autograder import config; print(config.load().week(sys.argv[1]).id)' "$WEEK")
rm -rf class && mkdir -p class
for repo in checkouts/*/; do
  student=$(basename "$repo")
  mkdir -p "class/$student"
  if [ -d "$repo/assignments/$id" ]; then
    # regular files only: a symlink in a student's repository must not make the grader read anything else
    find "$repo/assignments/$id" -maxdepth 1 -type f -exec cp {} "class/$student/" \\;
  fi
done
"""

GRADE = """SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"  # bubblewrap's sandbox needs root
$SUDO .venv/bin/course grade-all "$WEEK" class --out "build/week-$WEEK/gradebook.csv" --jobs "$(nproc)"
"""


def instructor_workflow() -> str:
    """A workflow for the instructors' private repository: grade one week of a Classroom assignment."""
    workflow = {
        "name": "Grade a week with the hidden tests",
        "on": {
            "workflow_dispatch": {
                "inputs": {
                    "week": {"description": "the week: 01, 1, 01-attention or attention", "required": True},
                    "assignment": {
                        "description": "the Classroom assignment's repository prefix (repositories are PREFIX-USERNAME)",
                        "required": True,
                    },
                }
            }
        },
        "permissions": {"contents": "read"},
        "jobs": {
            "grade": {
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 240,
                "env": {
                    "WEEK": "${{ inputs.week }}",
                    "ASSIGNMENT": "${{ inputs.assignment }}",
                    "ORG": "${{ vars.CLASSROOM_ORG || github.repository_owner }}",
                },
                "steps": [
                    {"name": "Checkout the course (hidden tests, reference solutions)", "uses": "actions/checkout@v4"},
                    {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
                    {
                        "name": "Install the course and bubblewrap",
                        "run": "sudo apt-get update -q && sudo apt-get install -y -q bubblewrap\nmake setup\n",
                    },
                    {
                        "name": "Fetch the students' repositories",
                        "env": {"GH_TOKEN": "${{ secrets.CLASSROOM_TOKEN }}"},
                        "run": FETCH,
                    },
                    {"name": "Collect each student's files for the week", "run": COLLECT},
                    {"name": "Grade with the hidden tests", "run": GRADE},
                    {
                        "name": "Upload the gradebook and results",
                        "uses": "actions/upload-artifact@v4",
                        "with": {"name": "gradebook-week-${{ inputs.week }}", "path": "build/"},
                    },
                ],
            }
        },
    }
    return _dump(
        "# Grade a GitHub Classroom assignment with the hidden tests, in the instructors' private repository.\n"
        "# Needs a secret CLASSROOM_TOKEN (a token that can read the organisation's student repositories) and,\n"
        "# if the students' repositories are in another organisation, a variable CLASSROOM_ORG.\n",
        workflow,
    )


SETUP = """# GitHub Classroom for the transformers course

1. Student edition with the autograding workflow, as the assignment's template repository:

       course release --student ../course-student --classroom
       cd ../course-student && git init && git add . && git commit -m "course" && git push ...

   Its `.github/workflows/classroom.yml` runs `course check NN` (public tests only) for every week
   on each push; GitHub Classroom shows one point per week whose public checks all pass.

2. Grading with the hidden tests stays in this private repository: copy
   `.github/workflows/grade-class.yml` (written here) into it, add a secret `CLASSROOM_TOKEN`
   (a fine-grained token with read access to the students' repositories) and, when they live in
   another organisation, a variable `CLASSROOM_ORG`. Run "Grade a week with the hidden tests"
   (Actions > Run workflow) with the week and the assignment's repository prefix; the gradebook
   and each student's results.json are the run's artifact.
"""


def export(course: Course, out: Path) -> list[Path]:
    """Write the instructor workflow, a copy of the student workflow and the setup notes under ``out``."""
    files = {
        out / ".github" / "workflows" / "grade-class.yml": instructor_workflow(),
        out / "student" / ".github" / "workflows" / "classroom.yml": student_workflow(course),
        out / "README.md": SETUP,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)
