"""The grader reads a submission's source for what its in-sandbox instruments cannot see through.

Unit tests of each rule, the reference solutions and skeletons reading clean, and the escapes
reaching the checks through the ``student`` proxy (the end-to-end attacks are in
``test_grading_security.py``).
"""

from __future__ import annotations

import textwrap

import pytest

from autograder import audit, checks, config, reference
from autograder.checks import CheckFailed
from autograder.proxy import StudentModule
from autograder.recorded import RecordedOps, RecordedShapes
from autograder.student_process import StudentProcess
from tests.helpers import REPO

MODULES = {path.stem for path in (REPO / "solutions").glob("*/*.py")}


def escapes(source: str) -> list[str]:
    return [escape.what for escape in audit.audit_source(textwrap.dedent(source), "mine.py", MODULES)]


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("import numpy as np", "imports numpy"),
        ("from numpy import exp", "imports from numpy"),
        ("import sys", "imports sys"),
        ("import gc", "imports gc"),
        ("import inspect", "imports inspect"),
        ("import ctypes", "imports ctypes"),
        ("import importlib", "imports importlib"),
        ("import torch.jit", "imports torch.jit"),
        ("from torch.overrides import TorchFunctionMode", "imports from torch.overrides"),
        ("from torch.utils._python_dispatch import TorchDispatchMode", "imports from torch.utils._python_dispatch"),
        ("import worker", "imports worker"),
        ("from . import attention", "a relative import"),
        ("from torch import *", "hides which names"),
        ("from torch import jit", "TorchScript"),
        ("import torch\n@torch.jit.script\ndef f(x: torch.Tensor) -> torch.Tensor:\n    return x", "TorchScript"),
        ("import torch\nt = torch\nscript = t.jit.script", "TorchScript"),
        ("import torch\nwith torch._C.DisableTorchFunction():\n    pass", "torch._C"),
        ("import torch\nC = torch._C", "torch._C"),
        ("import torch\nf = torch.compile(lambda x: x)", "compile"),
        ("import torch\nx = torch.__dict__['softmax']", ".__dict__"),
        ("def f(g):\n    return g.__globals__", ".__globals__"),
        ("x = ().__class__.__mro__[1].__subclasses__()", ".__mro__"),
        ("import torch\nf = getattr(torch, 'soft' + 'max')", "uses getattr"),
        ("import torch\nf = getattr(torch, '_C')", "torch._C"),
        ("import torch\nnames = vars(torch)", "uses vars"),
        ("g = globals()", "uses globals"),
        ("eval('1')", "uses eval"),
        ("exec('x = 1')", "uses exec"),
        ("m = __import__('sys')", "uses __import__"),
        ("b = __builtins__", "uses __builtins__"),
        ("import os\nos.write(3, b'x')", "os.write"),
        ("import os as o\no.system('true')", "os.system"),
        ("import os\nos._exit(0)", "os._exit"),
        ("from os import fork", "os.fork"),
        ("import io\nf = io.FileIO(3, 'wb')", "io.FileIO"),
        ("f = open(3, 'wb')", "by number"),
        ("data = open('/proc/self/status').read()", "/proc"),
        (
            "def f():\n    try:\n        1 / 0\n    except Exception as e:\n        return e.__traceback__.tb_frame",
            "frames",
        ),
        ("def f(g):\n    return g.gi_frame.f_back", "frames"),
        ("class T:\n    def __torch_function__(self, *a):\n        pass", "takes over"),
    ],
)
def test_each_escape_is_found(source, says):
    found = escapes(source)
    assert any(says in what for what in found), found


@pytest.mark.parametrize(
    "source",
    [
        "import math\nimport torch\nimport torch.nn.functional as F\nfrom torch import Tensor, nn",
        "import triton\nimport triton.language as tl\n@triton.jit\ndef kernel(x):\n    pass",
        "import os\nos.makedirs('out', exist_ok=True)\nflag = os.environ.get('TRITON_INTERPRET')",
        "import io\nbuffer = io.BytesIO()",
        "import re\npattern = re.compile('a+')",
        "from multihead import MultiHeadAttention\nimport gpt",
        "class M:\n    def __init__(self):\n        super().__init__()\n        self.name = type(self).__name__",
        "import torch\nact = getattr(torch, 'tanh')\nhas = hasattr(torch, 'relu')",
        "with open('train_log.csv', 'w') as f:\n    f.write('step')",
        "from torch.utils.checkpoint import checkpoint",
    ],
)
def test_plain_code_has_no_escapes(source):
    assert escapes(source) == []


def test_a_file_that_does_not_parse_has_no_escapes():
    assert audit.audit_source("def (:", "broken.py") == []  # it fails to import, with its own message


def instrumented_weeks() -> list[config.Week]:
    """The weeks whose hidden tests rest on the op recorder or the shape tracer."""
    uses = ("assert_no_forbidden_ops", "assert_no_tensor_with_dims")
    return [
        week
        for week in config.load().weeks
        if any(name in path.read_text() for path in week.hidden_dir.glob("test_*.py") for name in uses)
    ]


def test_the_references_and_skeletons_read_clean():
    """Every instrumented week's reference and skeleton: an escape there would fail its own op checks."""
    weeks = instrumented_weeks()
    assert len(weeks) >= 9
    for week in weeks:
        for folder in (week.solution_dir, week.assignment_dir):
            for name in week.files:
                path = folder / name
                assert audit.audit_source(path.read_bytes(), path.name, MODULES) == [], path


def test_the_checks_refuse_a_recording_with_escapes():
    found = tuple(audit.audit_source("import numpy", "flash.py"))
    with pytest.raises(CheckFailed, match=r"cannot be checked: the op check does not see through flash.py line 1"):
        checks.assert_no_forbidden_ops(RecordedOps({"exp"}, found), ["*softmax*"], name="softmax")
    with pytest.raises(CheckFailed, match="the memory check does not see through"):
        checks.assert_no_tensor_with_dims(RecordedShapes([(4, 16)], found), (100, 80), name="flash")
    checks.assert_no_forbidden_ops(RecordedOps({"exp"}), ["*softmax*"], name="softmax")  # nothing to refuse
    checks.assert_no_tensor_with_dims(RecordedShapes([(4, 16)]), (100, 80), name="flash")


def test_the_proxy_carries_the_escapes_of_the_students_files(tmp_path):
    """Read grader-side from the handed-in bytes, before the worker starts; NumPy hides a full score matrix."""
    (tmp_path / "mine.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import torch

            def scores(q, k):
                return torch.tensor(float((np.asarray(q) @ np.asarray(k).T).sum()))
            """
        )
    )
    process = StudentProcess(tmp_path, ["mine.py"], config.Limits())
    try:
        student = StudentModule(process, "mine")
        student.scores.traced(__import__("torch").ones(100, 8), __import__("torch").ones(80, 8))
        assert (100, 80) not in student.last_shapes  # the tracer never saw NumPy's matrix
        assert [e.what for e in student.last_shapes.escapes] == [
            "imports numpy, which the op and shape checks cannot see into"
        ]
        with pytest.raises(CheckFailed, match="mine.py line 2: imports numpy"):
            checks.assert_no_tensor_with_dims(student.last_shapes, (100, 80), name="scores")
    finally:
        process.close()


def test_carried_modules_are_read_only_when_they_are_the_students(tmp_path):
    week = config.load().week("04")
    (tmp_path / "block.py").write_text((week.solution_dir / "block.py").read_text())
    multihead = (REPO / "solutions" / "02-multihead" / "multihead.py").read_bytes() + b"\nimport numpy\n"
    for own, expected in ((frozenset(), ()), (frozenset({"multihead.py"}), ("multihead.py",))):
        process = StudentProcess(
            tmp_path, ["block.py"], week.limits, carried={"multihead.py": multihead}, audited_carried=own
        )
        try:
            assert tuple(e.file for e in process.escapes) == expected
        finally:
            process.close()
    assert reference  # the loader that builds carried modules is tested in test_carry.py


PEAK = """
import torch

def full(q, k):
    return (q @ k.T).softmax(-1) @ k  # a (T, T) matrix, 64 MB at T = 4096

def tiled(q, k):
    return torch.cat([(q[i : i + 128] @ k.T).softmax(-1) @ k for i in range(0, q.shape[0], 128)])

def reset_my_peak():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
"""


def test_peak_memory_is_read_by_the_grader(tmp_path, sandboxed):
    """``measured`` reads the child's peak memory from /proc, which (in bubblewrap) the child cannot reset."""
    import torch

    from autograder.student_errors import StudentCodeError

    (tmp_path / "mine.py").write_text(PEAK)
    process = StudentProcess(tmp_path, ["mine.py"], config.Limits())
    try:
        student = StudentModule(process, "mine")
        q = torch.randn(4096, 16)
        student.tiled(q, q)  # warm-up
        student.full.measured(q, q)
        full = student.last_peak_bytes
        student.tiled.measured(q, q)
        tiled = student.last_peak_bytes
        assert full is not None, "peak memory not measured"
        assert tiled is not None, "peak memory not measured"
        assert full > 60 * 2**20, f"the (T, T) matrices took {full / 2**20:.1f} MB"
        assert tiled < 16 * 2**20, f"the tiles took {tiled / 2**20:.1f} MB"
        if sandboxed:
            with pytest.raises(StudentCodeError, match="Read-only file system"):
                student.reset_my_peak()
    finally:
        process.close()
