"""Per-call instruments (``autograder/sandboxed/instruments.py``): one registry, measurements the engine makes itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.config import Limits
from autograder.proxy import StudentModule
from autograder.sandboxed import instruments
from autograder.sandboxed.worker import Worker
from autograder.student_errors import StudentException
from autograder.student_process import StudentProcess

MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, dim, checkpointed=False):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(dim, dim)
        self.b = nn.Linear(dim, dim)
        self.checkpointed = checkpointed

    def block(self, x):
        return torch.tanh(self.b(torch.relu(self.a(x))))

    def forward(self, x):
        if self.checkpointed:
            return torch.utils.checkpoint.checkpoint(self.block, x, use_reentrant=False)
        return self.block(x)


def saved_activation_bytes(model, x):
    return 1  # a student's own "instrument" says whatever it likes
"""


def saved_bytes_here(model: nn.Module, x: torch.Tensor) -> int:
    """The oracle: the same count, made in this process."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.untyped_storage().data_ptr() not in parameters:
            saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(saved.values())


@pytest.fixture
def student(tmp_path):
    (tmp_path / "net.py").write_text(MODEL)
    process = StudentProcess(tmp_path, ["net.py"], Limits())
    yield StudentModule(process, "net")
    process.close()


def test_the_registry_lists_every_instrument_by_name():
    assert set(instruments.INSTRUMENTS) == {"ops", "shapes", "saved_bytes", "gpu_compile"}
    with pytest.raises(ValueError, match="no such instrument: nope"):
        instruments.make({"nope": {}}, None, "")


def test_saved_tensor_bytes_is_measured_by_the_engine_not_the_students_function(student):
    x = torch.randn(8, 16)
    exec_globals: dict = {}
    exec(compile(MODEL, "net.py", "exec"), exec_globals)
    want_plain = saved_bytes_here(exec_globals["Net"](16), x)
    want_checkpointed = saved_bytes_here(exec_globals["Net"](16, True), x)
    assert want_checkpointed < want_plain  # the oracle sees checkpointing keep only the block's input
    plain = student.Net(16).saved_tensor_bytes(x)
    checkpointed = student.Net(16, True).saved_tensor_bytes(x)
    assert (plain, checkpointed) == (want_plain, want_checkpointed)
    assert student.saved_activation_bytes(student.Net(16), x) == 1  # what the file claims is beside the point


def test_an_unknown_instrument_is_an_error_not_a_silent_skip():
    worker = Worker.from_modules({"m": type("M", (), {"f": staticmethod(lambda: 1)})})
    reply = worker.handle({"op": "call", "module": "m", "path": ["f"], "instruments": {"nope": {}}})
    assert reply["ok"] is False
    assert "no such instrument" in reply["message"]


def test_the_shape_tracer_is_an_instrument_asked_for_by_name(student):
    net = student.Net(16)
    net.traced(torch.randn(8, 16))
    assert (8, 16) in student.last_shapes
    with pytest.raises(StudentException):
        student.missing(1)
