"""Loading a week's modules in a trusted process, with the earlier weeks' modules they import.

Student files import earlier weeks by module name (``from multihead import
MultiHeadAttention``). In the grader's own process (the ``reference`` fixture, the
project's tests, labs, benchmarks and the in-process exports) several copies of the
same module name can coexist: the reference ``multihead`` and a student's. So nothing
here is put on ``sys.path`` or left in ``sys.modules`` under its plain name: each
module is executed under a private name, with its earlier-week imports bound to the
modules chosen for them only while it runs.

    from autograder import reference
    bert = reference.load(course.week("05"))              # reference bert with reference block, multihead
    lab = reference.load_file(Path("my/training.py"), sources={"gpt": Path("my/gpt.py"), ...})
    script = reference.load_file(Path("weeks/09-efficient/lab_profile.py"), name="lab_profile")  # a lab itself
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from autograder.config import Week
from autograder.submission_files import read_submission

_counter = itertools.count()


@contextlib.contextmanager
def bound(modules: Mapping[str, ModuleType]) -> Iterator[None]:
    """Make ``import name`` find ``modules[name]`` while the block runs; restore ``sys.modules`` after."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def exec_file(path: Path, name: str, imports: Mapping[str, ModuleType] | None = None) -> ModuleType:
    """Execute ``path`` as a new module called ``name``, its imports of ``imports``' names resolved to them."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    with bound(dict(imports or {})):
        sys.modules[name] = module  # dataclasses and pickling look a module up by name while it runs
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    return module


@dataclass(frozen=True)
class CarriedModule:
    """One earlier week's module delivered with a submission: whose file it is and where it came from."""

    name: str  # file name, e.g. "multihead.py"
    week: Week  # the week it belongs to
    path: Path  # where its bytes were read
    own: bool  # the student's own file (True) or the reference solution (False)

    def describe(self) -> str:
        return f"{self.name} (week {self.week.id})"

    def read(self, limit_mb: int) -> bytes:
        """Its bytes; a student's file is read as their week's files are (a regular file within the size limit)."""
        if not self.own:
            return self.path.read_bytes()
        return read_submission([self.name], self.path.parent, limit_mb).get(self.name, b"")


def carried_modules(week: Week, own_folders: list[Path], *, limit_mb: int) -> list[CarriedModule]:
    """The earlier modules ``week`` imports: the student's own from the first of ``own_folders`` holding one, else the reference."""
    found: list[CarriedModule] = []
    for name, earlier in week.carried_files.items():
        for folder in own_folders:
            if read_submission([name], folder, limit_mb):  # a regular file within the size limit
                found.append(CarriedModule(name, earlier, folder / name, own=True))
                break
        else:
            found.append(CarriedModule(name, earlier, earlier.reference_file(name), own=False))
    return found


def own_folders(week: Week, submission: Path) -> list[Path]:
    """Where ``course check`` looks for a student's earlier modules: beside this week's files, then each week's folder."""
    return [submission, *(submission.parent / earlier.id for earlier in week.carried)]  # assignments/NN-slug/


def carried_sources(week: Week, own: Path | list[Path] | None = None) -> dict[str, Path]:
    """Module name -> file for every earlier module ``week`` needs: the first of ``own``'s folders holding it, else the reference."""
    folders = [own] if isinstance(own, Path) else list(own or [])
    modules = carried_modules(week, folders, limit_mb=week.limits.max_file_mb)
    return {module.name.removesuffix(".py"): module.path for module in modules}


def load_student_file(week: Week, path: Path, name: str | None = None) -> ModuleType:
    """Import a file of ``week`` from ``path`` (a student's, or the reference) for a lab or benchmark.

    Its earlier weeks' modules are found as ``course check`` finds them: beside it, then in each
    earlier week's folder next to its folder (``assignments/04-block/``), else the reference
    (``solutions/``, or the copy a student edition provides). Raises ``FileNotFoundError``
    naming what is missing.
    """
    if not path.is_file():
        raise FileNotFoundError(f"cannot import {path}: no such file")
    carried = carried_modules(week, own_folders(week, path.resolve().parent), limit_mb=week.limits.max_file_mb)
    missing = [m for m in carried if not m.path.is_file()]
    if missing:
        wanted = ", ".join(f"{m.describe()} in {m.week.assignment_dir}" for m in missing)
        raise FileNotFoundError(f"{path.name} imports earlier weeks' modules; put yours in place: {wanted}")
    return load_file(path, {m.name.removesuffix(".py"): m.path for m in carried}, name=name)


def load_modules(sources: Mapping[str, Path], prefix: str = "_course") -> dict[str, ModuleType]:
    """Load ``sources`` (module name -> file, earlier weeks first) so that each sees the ones before it."""
    loaded: dict[str, ModuleType] = {}
    serial = next(_counter)
    for name, path in sources.items():
        loaded[name] = exec_file(path, f"{prefix}_{serial}_{name}", loaded)
    return loaded


def load_file(path: Path, sources: Mapping[str, Path] | None = None, name: str | None = None) -> ModuleType:
    """Load one file whose earlier-week imports come from ``sources`` (module name -> file, in course order).

    The one way the project imports a file by path: a lab or benchmark script, a hidden-test module
    read by the project's tests (``load_file(path, name="hidden_gpt")``). The module stays in
    ``sys.modules`` under ``name`` (a private name by default), as dataclasses and pickling need.
    """
    earlier = load_modules(sources or {})
    return exec_file(path, name or f"_course_{next(_counter)}_{path.stem}", earlier)


def load_week(week: Week, folder: Path | None = None, *, own: Path | None = None) -> dict[str, ModuleType]:
    """Every module of ``week`` (from ``folder``, the solutions by default) with its earlier modules loaded first.

    ``own``: a folder whose files replace the reference's earlier modules where present.
    """
    folder = folder or week.solution_dir
    loaded = load_modules(carried_sources(week, own), prefix=f"_course_{week.id.replace('-', '_')}_uses")
    serial = next(_counter)
    for module in week.modules:  # a week's later file may import its earlier one (flash_triton uses flash)
        loaded[module] = exec_file(folder / f"{module}.py", f"_course_reference_{serial}_{module}", loaded)
    return {module: loaded[module] for module in week.modules}


def load(week: Week, file: str | None = None) -> ModuleType:
    """The reference solution's ``file`` of ``week`` (its first file by default), earlier weeks' references under it."""
    module = (file or week.files[0]).removesuffix(".py")
    return load_week(week)[module]
