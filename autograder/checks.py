"""Comparisons for hidden and public tests, run in the trusted grader process.

Every helper checks the value's type, dtype, shape and finiteness before its
numbers, and fails with a message a student can act on (the largest error and
where it is, plus an optional hint), never with the expected tensor itself.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

import torch

from autograder.proxy import RemoteObject

# (rtol, atol) by dtype: float64 comparisons are against float64 references, so
# only summation-order noise is allowed; lower precisions follow
# torch.testing.assert_close's defaults.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-10),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
}


MISTAKE_HINT = "your result matches a common mistake: "


class CheckFailed(AssertionError):
    """A student's value was checked and found wrong; the message says how.

    ``mistake``: the description of the known mistake the value reproduces, if it does
    (it becomes the test result's ``mistake``, shown in the gradebook).
    """

    def __init__(self, message: str, mistake: str | None = None) -> None:
        super().__init__(message)
        self.mistake = mistake


def _fail(name: str, problem: str, hint: str | None, mistake: str | None = None) -> None:
    """Raise ``CheckFailed``; a recognised ``mistake`` replaces the hint."""
    message = f"{name}: {problem}"
    if mistake:
        hint = MISTAKE_HINT + mistake
    if hint:
        message += f"\nHint: {hint}"
    raise CheckFailed(message, mistake)


def _index(flat_index: int, shape: torch.Size) -> tuple[int, ...]:
    """``flat_index`` as a row-major index into ``shape`` (plain Python: ``torch.unravel_index``
    costs 0.6 s on its first call, a quarter of a whole week-01 grading)."""
    index = []
    for size in reversed(shape):
        flat_index, i = divmod(flat_index, size)
        index.append(i)
    return tuple(reversed(index))


def expect_tensor(
    value: Any,
    *,
    name: str,
    shape: tuple[int, ...] | None = None,
    dtype: torch.dtype | None = None,
    hint: str | None = None,
) -> torch.Tensor:
    """Fail unless ``value`` is a plain tensor with the given shape and dtype."""
    if type(value) is not torch.Tensor:
        what = type(value).__name__
        if isinstance(value, RemoteObject):
            what = f"an object of type {value.type_name}"
        elif isinstance(value, (tuple, list)):
            what = f"a {what} of {len(value)} items"
        _fail(name, f"expected a torch.Tensor, got {what}", hint)
    assert isinstance(value, torch.Tensor)
    if dtype is not None and value.dtype != dtype:
        _fail(name, f"dtype is {value.dtype}, expected {dtype}", hint)
    if shape is not None and tuple(value.shape) != tuple(shape):
        _fail(name, f"shape is {tuple(value.shape)}, expected {tuple(shape)}", hint)
    return value


def expect_sequence(value: Any, length: int, *, name: str, hint: str | None = None) -> tuple[Any, ...]:
    """Fail unless ``value`` is a tuple or list of ``length`` items."""
    if not isinstance(value, (tuple, list)) or len(value) != length:
        got = (
            f"{type(value).__name__} of {len(value)} items"
            if isinstance(value, (tuple, list))
            else type(value).__name__
        )
        _fail(name, f"expected a tuple of {length} items, got a {got}", hint)
    return tuple(value)


def assert_close(
    actual: Any,
    expected: torch.Tensor,
    *,
    name: str = "output",
    rtol: float | None = None,
    atol: float | None = None,
    hint: str | None = None,
    mistakes: dict[str, torch.Tensor] | None = None,
) -> None:
    """Fail unless ``actual`` matches ``expected`` in type, dtype, shape, NaN/inf pattern and values.

    ``mistakes`` maps a description of a common mistake to the value that mistake
    would produce; when the student's value matches one, the failure says so
    ("looks like ... ") instead of the generic ``hint``.
    """
    expect_tensor(actual, name=name, shape=tuple(expected.shape), dtype=expected.dtype, hint=hint)
    default_rtol, default_atol = TOLERANCES.get(expected.dtype, (0.0, 0.0))
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    if actual.numel() == 0:
        return
    if not expected.is_floating_point():
        assert_equal(actual, expected, name=name, hint=hint)
        return
    for test, label, instead in ((torch.isnan, "NaN", "a number"), (torch.isinf, "inf", "a finite number")):
        bad = test(actual) & ~test(expected)
        if bad.any():
            where = _index(int(bad.flatten().nonzero()[0]), actual.shape)
            problem = (
                f"contains {label} ({int(bad.sum())} entries, first at index {where}) where {instead} was expected"
            )
            _fail(name, problem, hint, _diagnose(actual, mistakes, rtol, atol))
    close = torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return
    a64, e64 = actual.double(), expected.double()
    error = (a64 - e64).abs().nan_to_num(nan=float("inf"))
    error = torch.where(close, torch.zeros_like(error), error)
    worst = int(error.flatten().argmax())
    where = _index(worst, actual.shape)
    max_error = float(error.flatten()[worst])
    scale = float(e64.abs().max())
    _fail(
        name,
        f"{int((~close).sum())} of {close.numel()} values differ; largest error {max_error:.3g} at index {where} "
        f"(values are up to {scale:.3g} in size; allowed rtol={rtol:g}, atol={atol:g})",
        hint,
        _diagnose(actual, mistakes, rtol, atol),
    )


def _diagnose(actual: torch.Tensor, mistakes: dict[str, torch.Tensor] | None, rtol: float, atol: float) -> str | None:
    """The description of the first known mistake whose output ``actual`` reproduces."""
    for description, wrong in (mistakes or {}).items():
        wrong = wrong.detach().cpu()
        if wrong.shape == actual.shape and bool(
            torch.isclose(
                actual, wrong.to(actual.dtype), rtol=max(rtol, 1e-4), atol=max(atol, 1e-5), equal_nan=True
            ).all()
        ):
            return description
    return None


def assert_equal(
    actual: Any,
    expected: torch.Tensor,
    *,
    name: str = "output",
    hint: str | None = None,
    mistakes: dict[str, torch.Tensor] | None = None,
) -> None:
    """Exact equality of type, dtype, shape and every element (for masks and indices)."""
    expect_tensor(actual, name=name, shape=tuple(expected.shape), dtype=expected.dtype, hint=hint)
    mistake = None
    for description, wrong in (mistakes or {}).items():
        if wrong.shape == actual.shape and bool((actual.cpu() == wrong.cpu()).all()):
            mistake = description
            break
    same = actual.cpu() == expected.cpu()
    if not bool(same.all()):
        where = _index(int((~same).flatten().nonzero()[0]), actual.shape)
        _fail(
            name,
            f"{int((~same).sum())} of {same.numel()} entries are wrong; first at index {where}: "
            f"got {actual[where].item()!r}, expected {expected[where].item()!r}",
            hint,
            mistake,
        )


def assert_no_forbidden_ops(
    used: Iterable[str], forbidden: Iterable[str], *, name: str, hint: str | None = None
) -> None:
    """Fail when any recorded op name matches a forbidden pattern (fnmatch syntax, e.g. ``*softmax*``).

    Also fails when the grader read an escape in the student's files (``used.escapes``, from
    ``student.last_ops``): code the recorder cannot see through proves nothing by recording nothing.
    """
    _refuse_escapes(used, name, "the op check")
    patterns = list(forbidden)
    hits = sorted({op for op in used for pattern in patterns if fnmatch.fnmatchcase(op, pattern)})
    if hits:
        _fail(name, f"calls {', '.join(hits)}, which this exercise asks you to write yourself", hint)


ESCAPE_HINT = (
    "the grader reads your whole file before it runs: keep it to torch and math, with no torch.jit, "
    "torch._C, NumPy, sys, getattr with a computed name, eval or __dict__ anywhere in it"
)


def _refuse_escapes(recorded: object, name: str, check: str) -> None:
    escapes = getattr(recorded, "escapes", ())
    if escapes:
        listed = "; ".join(escape.describe() for escape in escapes[:3])
        more = f" (and {len(escapes) - 3} more)" if len(escapes) > 3 else ""
        _fail(name, f"cannot be checked: {check} does not see through {listed}{more}", ESCAPE_HINT)


def assert_global_rng_untouched(used_global_rng: bool, *, name: str, hint: str | None = None) -> None:
    """Fail when a call that is given its own seed or generator drew from (or reseeded) torch's global RNG.

    Pass ``student.last_used_global_rng`` right after the call: seeded code must be
    reproducible from what it is given alone and leave the caller's random stream alone.
    """
    if used_global_rng:
        _fail(
            name,
            "draws from (or reseeds) torch's global random generator",
            hint or "draw only from the generator the function is given (generator=...), never torch.manual_seed",
        )


def assert_no_tensor_with_dims(
    shapes: Iterable[tuple[int, ...]], dims: tuple[int, int], *, name: str, hint: str | None = None
) -> None:
    """Fail when a traced tensor has two different dims of sizes ``dims`` (e.g. ``(Tq, Tk)``: a full score matrix).

    ``shapes`` comes from ``student.last_shapes`` after ``fn.traced(...)`` or
    ``fn.vjp(..., trace_shapes=True)``. Choose sizes no other dim has (``Tq=100``
    with tiles of 16 and a head size of 32), or an honest tensor is flagged.
    """
    _refuse_escapes(shapes, name, "the memory check")
    first, second = dims
    for shape in shapes:
        for i, size in enumerate(shape):
            if size == first and any(other == second for j, other in enumerate(shape) if j != i):
                _fail(
                    name,
                    f"created a tensor of shape {tuple(shape)}, which holds a full ({first} x {second}) matrix",
                    hint,
                )


def reference_grads(
    outputs: torch.Tensor | Iterable[torch.Tensor],
    inputs: torch.Tensor | Iterable[torch.Tensor],
    grad_outputs: torch.Tensor | Iterable[torch.Tensor | None] | None = None,
) -> tuple[torch.Tensor, ...]:
    """``torch.autograd.grad(outputs, inputs, grad_outputs)`` for the reference side of a test.

    The same numbers (the gradient of ``sum(output * grad_output)`` is ``grad_output``
    exactly), without handing autograd a tensor of output gradients: that makes torch import
    its symbolic-shapes machinery and sympy, 0.4 s on the first call, a tenth of grading a
    week-01 submission.
    """
    outs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
    leaves = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    if grad_outputs is None:
        return torch.autograd.grad(outs, leaves)
    grads = (grad_outputs,) if isinstance(grad_outputs, torch.Tensor) else tuple(grad_outputs)
    total = sum(
        ((out * grad).sum() for out, grad in zip(outs, grads, strict=True) if grad is not None), torch.zeros(())
    )
    return torch.autograd.grad(total, leaves)
