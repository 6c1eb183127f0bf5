"""The `student` proxy for later weeks: nn.Module construction, state dicts, forward, backward, handles."""

from __future__ import annotations

import textwrap
import time

import pytest
import torch

from autograder import assert_close
from autograder.config import Limits
from autograder.proxy import StudentModule
from autograder.student_errors import NotImplementedYet, StudentException, StudentTimeout
from autograder.student_process import StudentProcess

LAYERS = '''
import torch
from torch import nn


class Scale(nn.Module):
    """y = x * weight + bias, with named parameters like a checkpoint's."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * self.weight + self.bias


def make_pair(dim):
    return Scale(dim), Scale(dim)


def describe(module):
    return {"params": sum(p.numel() for p in module.parameters()), "type": type(module).__name__}


def todo():
    raise NotImplementedError("write me")


def returns_a_set():
    return {1, 2}


def broken():
    return [1, 2][5]


def full_scores(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v


def scale_in_place(x, factor, extra=None):
    x.mul_(factor)
    return x


def fill_nested(pair):
    pair["mask"].fill_(0)
    return pair["mask"]


def keeps_nan(x):
    return x * 2


def sample(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def sample_globally(shape, seed):
    torch.manual_seed(seed)
    return torch.rand(shape)


def tiled_scores(q, k, v, tile=16):
    out = []
    for start in range(0, q.shape[-2], tile):
        out.append(torch.softmax(q[..., start : start + tile, :] @ k.transpose(-2, -1), dim=-1) @ v)
    return torch.cat(out, dim=-2)
'''


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("submission")
    (folder / "layers.py").write_text(textwrap.dedent(LAYERS))
    process = StudentProcess(folder, ["layers.py"], Limits(call_timeout_s=20))
    yield StudentModule(process, "layers")
    process.close()


def test_module_forward_and_state_dict(layers):
    layer = layers.Scale(3)
    weight = torch.tensor([2.0, -1.0, 0.5])
    layer.load_state_dict({"weight": weight, "bias": torch.tensor([1.0, 1.0, 1.0])})
    x = torch.randn(4, 3)
    assert_close(layer(x), x * weight + 1.0)
    state = layer.state_dict()
    assert sorted(state) == ["bias", "weight"]
    assert_close(state["weight"], weight)
    assert layer.weight.fetch().tolist() == weight.tolist()
    assert layer.calls.fetch() == 1


def test_backward_through_a_module_reaches_inputs_and_parameters(layers):
    layer = layers.Scale(3)
    layer.load_state_dict({"weight": torch.tensor([2.0, 3.0, 4.0]), "bias": torch.zeros(3)})
    x = torch.randn(2, 3, requires_grad=True)
    grad_output = torch.ones(2, 3)
    out, (grad_x,) = layer.vjp(x, grad_outputs=grad_output)
    assert_close(out, x.detach() * torch.tensor([2.0, 3.0, 4.0]))
    assert_close(grad_x, torch.tensor([[2.0, 3.0, 4.0]] * 2))
    assert_close(layer.weight.grad.fetch(), x.detach().sum(0))


def test_handles_pass_back_into_student_code(layers):
    first, second = layers.make_pair(5)
    assert layers.describe(first) == {"params": 10, "type": "Scale"}
    assert "Scale" in repr(second)


def test_errors_become_clear_failures(layers):
    with pytest.raises(NotImplementedYet, match="todo is not implemented yet"):
        layers.todo()
    with pytest.raises(StudentException, match="IndexError: list index out of range .at layers.py line"):
        layers.broken()
    with pytest.raises(StudentException, match="layers.py has no attribute `missing`"):
        layers.missing()


def test_a_call_that_changes_its_input_in_place_fails(layers):
    x = torch.ones(3)
    with pytest.raises(StudentException, match=r"changed its input in place \(argument 1\)"):
        layers.scale_in_place(x, 2.0)
    assert x.tolist() == [1.0, 1.0, 1.0]  # the grader's own tensor never changes (it is sent as a copy)
    with pytest.raises(StudentException, match=r"argument 1\['mask'\]"):
        layers.fill_nested({"mask": torch.ones(2, dtype=torch.bool)})
    assert layers.scale_in_place(torch.ones(3), 1.0).tolist() == [1.0] * 3  # unchanged values: fine
    assert layers.keeps_nan(torch.tensor([float("nan"), 1.0])).isnan().tolist() == [True, False]


def test_global_rng_use_is_recorded_per_call(layers):
    first = layers.sample([4], 3)
    assert not layers.last_used_global_rng
    assert_close(layers.sample_globally([4], 3), first)  # the same numbers, from the global generator
    assert layers.last_used_global_rng


def test_sets_arrive_as_handles_not_values(layers):
    value = layers.returns_a_set
    with pytest.raises(AssertionError, match="expected a torch.Tensor, got an object of type set"):
        assert_close(value(), torch.zeros(2))


def test_a_child_that_stops_reading_cannot_block_the_grader(tmp_path):
    """A request larger than a pipe's buffer is written against the call's deadline."""
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "deaf.py").write_text(
        "import sys, time\n"
        "sys.modules['sandboxed.protocol'].Channel.recv = lambda self: time.sleep(10**6)  # stop reading requests\n"
        "def f(x):\n    return x\n"
    )
    process = StudentProcess(folder, ["deaf.py"], Limits(call_timeout_s=2))
    try:
        module = StudentModule(process, "deaf")
        started = time.monotonic()
        with pytest.raises(StudentTimeout, match="timed out after 2 s in f"):
            module.f(torch.zeros(2**20))
        assert time.monotonic() - started < 10
    finally:
        process.close()


@pytest.mark.parametrize(("function", "flagged"), [("full_scores", True), ("tiled_scores", False)])
def test_traced_calls_list_every_tensor_shape_forward_and_backward(layers, function, flagged):
    from autograder import CheckFailed, assert_no_tensor_with_dims

    q, k, v = (torch.randn(2, 100, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    forward = getattr(layers, function).traced(q, k, v)
    assert_close(forward, torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v, name=function)
    assert (2, 100, 8) in layers.last_shapes
    assert ((2, 100, 100) in layers.last_shapes) is flagged
    _, grads = getattr(layers, function).vjp(q, k, v, grad_outputs=torch.ones(2, 100, 8), trace_shapes=True)
    assert grads[0].shape == (2, 100, 8)
    assert ((2, 100, 100) in layers.last_shapes) is flagged
    if flagged:
        with pytest.raises(CheckFailed, match=r"\(2, 100, 100\)"):
            assert_no_tensor_with_dims(layers.last_shapes, (100, 100), name=function)
    else:
        assert_no_tensor_with_dims(layers.last_shapes, (100, 100), name=function)
    getattr(layers, function)(q, k, v)
    assert layers.last_shapes == [], "untraced calls record nothing"
