"""Reading ``course.yml``: the weeks, their files, tests with points, and limits.

A malformed file raises ``ConfigError`` naming the key and what was expected,
e.g. ``course.yml: weeks[0].tests.test_softmax: expected a number of points, got 'two'``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

CONFIG_NAME = "course.yml"
ROOT_ENV = "COURSE_ROOT"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
CARRY = ("reference", "student")  # where a week's earlier modules come from when it is graded


class ConfigError(ValueError):
    """course.yml is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission's worker process."""

    call_timeout_s: float = 10.0  # one call into student code
    total_timeout_s: float = 120.0  # all of one submission's calls together
    memory_mb: int = 3072  # address space of the worker (torch alone maps ~1 GB)
    max_processes: int = 64  # processes and threads of the sandbox user
    max_file_mb: int = 16  # largest file the student's code may write
    max_output_kb: int = 64  # printed output kept for the report


@dataclass(frozen=True)
class Week:
    """One week: its id (``01-attention``), student files, and hidden tests with points."""

    id: str
    title: str
    files: tuple[str, ...]
    tests: dict[str, float]
    limits: Limits
    visibility: str = "visible"
    root: Path = field(default=Path("."), compare=False)
    uses: tuple[str, ...] = ()  # ids of the earlier weeks whose modules this week's files import
    carry: str = "reference"  # graded with the reference's earlier modules, or the student's own
    carried: tuple[Week, ...] = field(default=(), compare=False, repr=False)  # every week it needs, in order
    # Graded by a person, never by the autograder: item (or hidden test) name -> points. A hidden
    # test named here still runs, for feedback only; its points are outside ``max_score``.
    manual: dict[str, float] = field(default_factory=dict)
    # Op patterns (fnmatch) the week's code may not call (``forbidden:``), after those of the earlier
    # week named by ``forbidden_from:`` (``inherited_forbidden``, that week's whole list).
    forbidden: tuple[str, ...] = ()
    forbidden_from: str | None = None
    inherited_forbidden: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def all_forbidden(self) -> tuple[str, ...]:
        """The week's effective forbidden ops: the inherited ones, then its own (each once)."""
        return tuple(dict.fromkeys((*self.inherited_forbidden, *self.forbidden)))

    @property
    def carried_files(self) -> dict[str, Week]:
        """File name -> the earlier week it belongs to, for every module this week needs (``uses``, transitively)."""
        return {name: week for week in self.carried for name in week.files}

    @property
    def number(self) -> int:
        return int(self.id.split("-", 1)[0])

    @property
    def modules(self) -> list[str]:
        return [name.removesuffix(".py") for name in self.files if name.endswith(".py")]

    @property
    def max_score(self) -> float:
        """The autograder's points: the hidden tests' (what results.json's ``max_score`` is)."""
        return float(sum(self.tests.values()))

    @property
    def manual_points(self) -> float:
        """The points a person gives (``manual:``), beside ``max_score``."""
        return float(sum(self.manual.values()))

    @property
    def solution_dir(self) -> Path:
        return self.root / "solutions" / self.id

    @property
    def provided_dir(self) -> Path:
        """Earlier weeks' reference files an instructor ships in the student edition (``release --provide``)."""
        return self.root / "provided" / self.id

    def reference_file(self, name: str) -> Path:
        """The reference of one of this week's files: the solution, or in a student edition the provided copy."""
        solution = self.solution_dir / name
        return solution if solution.is_file() else self.provided_dir / name

    @property
    def assignment_dir(self) -> Path:
        return self.root / "assignments" / self.id

    @property
    def hidden_dir(self) -> Path:
        return self.root / "autograder" / "hidden" / self.id

    @property
    def public_dir(self) -> Path:
        return self.root / "autograder" / "public" / self.id

    @property
    def mutants_dir(self) -> Path:
        return self.root / "autograder" / "mutants" / self.id

    @property
    def handout(self) -> Path:
        return self.root / "weeks" / self.id / "README.md"


@dataclass(frozen=True)
class Course:
    title: str
    weeks: tuple[Week, ...]
    root: Path

    def week(self, key: str) -> Week:
        """Find a week by id (``01-attention``), number (``01``, ``1``) or slug (``attention``)."""
        key = str(key).strip()
        for week in self.weeks:
            slug = week.id.split("-", 1)[-1]
            if key in (week.id, slug) or (key.isdigit() and int(key) == week.number):
                return week
        known = ", ".join(w.id for w in self.weeks)
        raise ConfigError(f"unknown week {key!r}; this course has: {known}")


def find_root(start: Path | None = None) -> Path:
    """The course root: ``$COURSE_ROOT``, else the nearest folder upwards holding course.yml."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    package_root = Path(__file__).resolve().parent.parent
    if (package_root / CONFIG_NAME).is_file():
        return package_root
    raise ConfigError(f"no {CONFIG_NAME} found in {here} or its parents (set {ROOT_ENV})")


def load(root: Path | None = None) -> Course:
    root = (root or find_root()).resolve()  # absolute: graders change directory (in-process, into a scratch folder)
    path = root / CONFIG_NAME
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse(data, root)


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{CONFIG_NAME}: {where}: expected {what}, got {value!r}")
    return value


def _limits(data: Any, base: Limits, where: str) -> Limits:
    if data is None:
        return base
    _expect(data, dict, where, "a mapping of limit names to numbers")
    known = {f.name: f.type for f in fields(Limits)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{CONFIG_NAME}: {where}.{key}: unknown limit (known: {', '.join(known)})")
        _expect(value, (int, float), f"{where}.{key}", "a positive number")
        if value <= 0:
            raise ConfigError(f"{CONFIG_NAME}: {where}.{key}: expected a positive number, got {value!r}")
        changes[key] = float(value) if known[key] == "float" else int(value)
    return replace(base, **changes)


def _visibility(value: Any, where: str) -> str:
    if value not in VISIBILITIES:
        raise ConfigError(f"{CONFIG_NAME}: {where}: expected one of {VISIBILITIES}, got {value!r}")
    return str(value)


def _carry(value: Any, where: str) -> str:
    if value not in CARRY:
        raise ConfigError(
            f"{CONFIG_NAME}: {where}: expected one of {CARRY} (reference: earlier weeks' modules come from the "
            f"solutions; student: from the student's own files), got {value!r}"
        )
    return str(value)


def parse(data: Any, root: Path) -> Course:
    """Validate the YAML document and build the ``Course``."""
    _expect(data, dict, "top level", "a mapping with `title` and `weeks`")
    title = _expect(data.get("title"), str, "title", "the course title as a string")
    defaults = _expect(data.get("defaults", {}), dict, "defaults", "a mapping")
    base_limits = _limits(defaults.get("limits"), Limits(), "defaults.limits")
    default_visibility = _visibility(defaults.get("visibility", "visible"), "defaults.visibility")
    default_carry = _carry(defaults.get("carry", "reference"), "defaults.carry")
    weeks_data = _expect(data.get("weeks"), list, "weeks", "a list of weeks")
    ids_in_order = [item.get("id") for item in weeks_data if isinstance(item, dict)]
    weeks: list[Week] = []
    for index, item in enumerate(weeks_data):
        where = f"weeks[{index}]"
        _expect(item, dict, where, "a mapping with id, title, files and tests")
        week_id = _expect(item.get("id"), str, f"{where}.id", "an id like '01-attention'")
        if not re.fullmatch(r"\d{2}-[a-z0-9-]+", week_id):
            raise ConfigError(f"{CONFIG_NAME}: {where}.id: expected NN-slug like '01-attention', got {week_id!r}")
        week_title = _expect(item.get("title"), str, f"{where}.title", "a title string")
        files = _expect(item.get("files"), list, f"{where}.files", "a list of file names")
        for j, name in enumerate(files):
            _expect(name, str, f"{where}.files[{j}]", "a file name")
            if "/" in name or not name.endswith(".py"):
                raise ConfigError(f"{CONFIG_NAME}: {where}.files[{j}]: expected a .py file name, got {name!r}")
        tests = _expect(item.get("tests"), dict, f"{where}.tests", "a mapping of test names to points")
        for name, points in tests.items():
            _expect(points, (int, float), f"{where}.tests.{name}", "a number of points")
            if points < 0:
                raise ConfigError(f"{CONFIG_NAME}: {where}.tests.{name}: points must not be negative")
        manual = _expect(item.get("manual", {}), dict, f"{where}.manual", "a mapping of items graded by hand to points")
        for name, points in manual.items():
            _expect(points, (int, float), f"{where}.manual.{name}", "a number of points")
            if points < 0:
                raise ConfigError(f"{CONFIG_NAME}: {where}.manual.{name}: points must not be negative")
            if name in tests:
                raise ConfigError(
                    f"{CONFIG_NAME}: {where}.manual.{name}: also in tests; an item is graded by hand or by the "
                    "autograder, not both"
                )
        visibility = _visibility(item.get("visibility", default_visibility), f"{where}.visibility")
        uses = _expect(item.get("uses", []), list, f"{where}.uses", "a list of earlier week ids")
        by_id = {w.id: w for w in weeks}
        carried: dict[str, Week] = {}
        for j, used in enumerate(uses):
            if used not in by_id:
                raise ConfigError(
                    f"{CONFIG_NAME}: {where}.uses[{j}]: {used!r} is not an earlier week (a week uses only weeks above it)"
                )
            for needed in (*by_id[used].carried, by_id[used]):
                carried[needed.id] = needed
        carry = _carry(item.get("carry", default_carry), f"{where}.carry")
        forbidden = _expect(item.get("forbidden", []), list, f"{where}.forbidden", "a list of op patterns")
        for j, pattern in enumerate(forbidden):
            _expect(pattern, str, f"{where}.forbidden[{j}]", "an op pattern like '*softmax*'")
        forbidden_from = item.get("forbidden_from")
        if forbidden_from is not None and forbidden_from not in carried:
            raise ConfigError(
                f"{CONFIG_NAME}: {where}.forbidden_from: expected a week this week uses (directly or through "
                f"another), got {forbidden_from!r}"
            )
        weeks.append(
            Week(
                id=week_id,
                title=week_title,
                files=tuple(files),
                tests={str(k): float(v) for k, v in tests.items()},
                limits=_limits(item.get("limits"), base_limits, f"{where}.limits"),
                visibility=visibility,
                root=root,
                uses=tuple(str(u) for u in uses),
                carry=carry,
                carried=tuple(sorted(carried.values(), key=lambda w: ids_in_order.index(w.id))),
                manual={str(k): float(v) for k, v in manual.items()},
                forbidden=tuple(forbidden),
                forbidden_from=forbidden_from,
                inherited_forbidden=carried[forbidden_from].all_forbidden if forbidden_from else (),
            )
        )
    ids = [w.id for w in weeks]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{CONFIG_NAME}: weeks: duplicate week ids in {ids}")
    owner: dict[str, str] = {}
    for week in weeks:  # later weeks import earlier ones by module name: one name, one week
        for name in week.files:
            if name in owner:
                raise ConfigError(f"{CONFIG_NAME}: {week.id}.files: {name} is already a file of week {owner[name]}")
            owner[name] = week.id
    return Course(title=title, weeks=tuple(weeks), root=root)
