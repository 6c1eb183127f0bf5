"""Typed grading results: one ``TestResult`` per graded case, one ``GradeReport`` per submission.

They flow unchanged from the pytest plugin through ``grading``, ``batch``, ``scale``,
``validate``, the CLI and every export. Text is made only where it is shown; Gradescope's
``results.json`` only where it is written (``to_gradescope``). ``to_dict``/``from_dict`` carry a
report through the grade cache and between processes as plain data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autograder.reference import CarriedModule


@dataclass
class TestResult:
    """One graded test case."""

    name: str  # the case's name: ``test_softmax[float32]``
    score: float
    max_score: float
    passed: bool
    output: str  # the feedback a student reads ("passed" when it passed)
    visibility: str = "visible"
    mistake: str | None = None  # the known mistake the student's value reproduced, if the check recognised one
    blame: str | None = None  # the earlier week whose module (the student's own) made this test fail
    duration_s: float = 0.0

    __test__ = False  # not a pytest test class

    def to_gradescope(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "status": "passed" if self.passed else "failed",
            "output": self.output,
            "visibility": self.visibility,
        }


@dataclass
class GradeReport:
    """Everything about one graded submission."""

    week: str
    tests: list[TestResult]
    execution_time: float
    sandbox: str
    student_output: str = ""
    notes: list[str] = field(default_factory=list)
    carried: list[CarriedModule] = field(default_factory=list)  # the earlier weeks' modules it ran with
    manual: list[TestResult] = field(default_factory=list)  # graded by a person (course.yml `manual:`), 0 points here

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)

    @property
    def passed(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def failed(self) -> list[TestResult]:
        return [t for t in self.tests if not t.passed]

    def first_problem(self) -> str:
        """One line on what went wrong: a recognised mistake if any, else the first failure's first line."""
        failed = self.failed
        for test in failed:
            if test.mistake:
                return test.mistake[:80]
        return failed[0].output.splitlines()[0][:80] if failed and failed[0].output else ""

    def output_text(self) -> str:
        lines = [
            f"Week {self.week}: {self.score:g} / {self.max_score:g} points, {self.passed}/{len(self.tests)} tests passed."
        ]
        lines += self.notes
        if self.manual:
            lines.append("Graded by hand by the course staff, not part of this score:")
            lines += [f"  {item.name}: {item.output}" for item in self.manual]
        lines.append(f"Isolation: {self.sandbox}.")
        if self.student_output.strip():
            lines.append("Your code printed:\n" + self.student_output)
        return "\n".join(lines)

    def to_gradescope(self) -> dict[str, Any]:
        """Gradescope's ``results.json``."""
        return {
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "execution_time": round(self.execution_time, 3),
            "output": self.output_text(),
            "tests": [t.to_gradescope() for t in self.tests],
        }

    def portable(self) -> GradeReport:
        """The report without the carried modules (which hold the course's ``Week`` objects): plain data."""
        return dataclasses.replace(self, carried=[])

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able), for the grade cache; ``from_dict`` reads it back."""
        data = dataclasses.asdict(self.portable())
        del data["carried"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradeReport:
        fields = {f.name for f in dataclasses.fields(TestResult)}

        def tests(items: list[dict[str, Any]]) -> list[TestResult]:
            return [TestResult(**{k: v for k, v in item.items() if k in fields}) for item in items]

        return cls(
            week=str(data["week"]),
            tests=tests(data["tests"]),
            execution_time=float(data["execution_time"]),
            sandbox=str(data["sandbox"]),
            student_output=str(data.get("student_output", "")),
            notes=list(data.get("notes", [])),
            manual=tests(data.get("manual", [])),
        )


def manual_result(name: str, points: float, checked: bool | None, output: str = "") -> TestResult:
    """An item a person grades (``manual:`` in course.yml): listed with the results, worth nothing here.

    ``checked``: how the hidden test of that name went (its check of the format only), or None
    where there is no such test.
    """
    if checked is None:
        check = "no automatic check"
    elif checked:
        check = "the autograder's check of its form passed"
    else:
        check = f"the autograder's check of its form failed: {output}"
    return TestResult(
        name=name,
        score=0.0,
        max_score=0.0,
        passed=checked is not False,
        output=f"graded by hand ({points:g} points, not part of the autograder's score); {check}",
        visibility="visible",
    )
