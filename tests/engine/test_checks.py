"""The comparison helpers: what passes, and that failures say what is wrong without giving the answer away."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

import autograder
from autograder import checks
from autograder.checks import (
    TOLERANCES,
    CheckFailed,
    assert_close,
    assert_equal,
    assert_no_forbidden_ops,
    expect_sequence,
    expect_tensor,
)
from autograder.proxy import RemoteObject
from tests.helpers import REPO


def failure(function, *args, **kwargs) -> str:
    """The message of the CheckFailed that ``function(*args, **kwargs)`` raises."""
    with pytest.raises(CheckFailed) as info:
        function(*args, **kwargs)
    return str(info.value)


def distinctive(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Values that would be recognisable in a message that leaks the expected tensor."""
    return torch.tensor([[123.456, -987.654, 55.5501], [7.89012, 0.314159, 271.828]], dtype=dtype)


# -- the public names --------------------------------------------------------------


def test_check_failed_is_an_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


def test_package_exports_the_checks_and_inputs():
    from autograder import inputs

    for name in autograder.__all__:
        assert getattr(autograder, name) is getattr(inputs if name == "randn" else checks, name)


# -- assert_close: passing ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_equal_tensors_pass(dtype):
    x = distinctive(dtype)
    assert_close(x.clone(), x)


def test_empty_tensors_pass():
    assert_close(torch.empty(0, 3), torch.empty(0, 3))


def test_matching_nan_and_inf_pass():
    expected = torch.tensor([1.0, float("nan"), float("inf"), float("-inf")], dtype=torch.float64)
    assert_close(expected.clone(), expected)


def test_requires_grad_tensors_pass():
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    assert_close(x * 2, torch.full((3,), 2.0, dtype=torch.float64))


DTYPE_SCALES = [(dtype, scale) for dtype in TOLERANCES for scale in (1.0, 64.0)] + [(torch.float64, 1000.0)]


def perturbed(dtype: torch.dtype, factor: float, scale: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(actual, expected, allowed): ``actual`` is ``expected`` moved by ``factor`` times the allowed error."""
    rtol, atol = TOLERANCES[dtype]
    expected = torch.full((4,), scale, dtype=torch.float64).to(dtype)
    allowed = atol + rtol * scale
    actual = (expected.double() + factor * allowed).to(dtype)
    return actual, expected, allowed


@pytest.mark.parametrize(("dtype", "scale"), DTYPE_SCALES)
def test_within_documented_tolerance_passes(dtype, scale):
    actual, expected, allowed = perturbed(dtype, 0.9, scale)
    error = float((actual.double() - expected.double()).abs().max())
    assert 0 < error <= allowed  # the perturbation survived rounding and is within tolerance
    assert_close(actual, expected)


@pytest.mark.parametrize(("dtype", "scale"), DTYPE_SCALES)
def test_beyond_documented_tolerance_fails(dtype, scale):
    actual, expected, allowed = perturbed(dtype, 3.0, scale)
    assert float((actual.double() - expected.double()).abs().min()) > allowed
    message = failure(assert_close, actual, expected)
    assert "4 of 4 values differ" in message


def test_tolerances_are_documented_values():
    assert TOLERANCES[torch.float64] == (1e-7, 1e-10)
    assert TOLERANCES[torch.float32] == (1.3e-6, 1e-5)


def test_explicit_tolerances_override_defaults():
    expected = torch.ones(3, dtype=torch.float64)
    actual = expected + 1e-3
    with pytest.raises(CheckFailed):
        assert_close(actual, expected)
    assert_close(actual, expected, atol=2e-3)
    assert_close(actual, expected, rtol=2e-3)
    message = failure(assert_close, actual, expected, rtol=0.0, atol=1e-4)
    assert "rtol=0" in message
    assert "atol=0.0001" in message


# -- assert_close: failures ---------------------------------------------------------


def test_wrong_type_tuple():
    message = failure(assert_close, (torch.ones(2), torch.ones(2)), torch.ones(2), name="softmax(x)")
    assert message == "softmax(x): expected a torch.Tensor, got a tuple of 2 items"


@pytest.mark.parametrize(("value", "what"), [([1.0, 2.0], "a list of 2 items"), (None, "NoneType"), (3.5, "float")])
def test_wrong_type_other(value, what):
    message = failure(assert_close, value, torch.ones(2))
    assert f"expected a torch.Tensor, got {what}" in message


def test_wrong_type_remote_object():
    remote = RemoteObject(None, 7, "Linear", "make_layer()")  # type: ignore[arg-type]
    message = failure(expect_tensor, remote, name="layer")
    assert message == "layer: expected a torch.Tensor, got an object of type Linear"


def test_wrong_dtype():
    message = failure(assert_close, torch.ones(2, 3), torch.ones(2, 3, dtype=torch.float64), name="out")
    assert message == "out: dtype is torch.float32, expected torch.float64"


def test_wrong_shape():
    message = failure(assert_close, torch.ones(3, 2, dtype=torch.float64), distinctive(), name="out")
    assert message == "out: shape is (3, 2), expected (2, 3)"


def test_dtype_checked_before_shape():
    message = failure(assert_close, torch.ones(3, 2, dtype=torch.float32), distinctive())
    assert "dtype" in message


def test_nan_where_number_expected():
    expected = distinctive()
    actual = expected.clone()
    actual[1, 2] = float("nan")
    actual[1, 0] = float("nan")
    message = failure(assert_close, actual, expected, name="weights")
    assert message.startswith("weights: contains NaN")
    assert "2 entries" in message
    assert "first at index (1, 0)" in message
    assert "where a number was expected" in message
    assert "123.456" not in message


def test_inf_where_finite_expected():
    expected = distinctive()
    actual = expected.clone()
    actual[0, 1] = float("-inf")
    message = failure(assert_close, actual, expected, name="weights")
    assert "contains inf (1 entries, first at index (0, 1)) where a finite number was expected" in message


def test_nan_reported_before_inf():
    expected = distinctive()
    actual = expected.clone()
    actual[0, 0] = float("inf")
    actual[1, 1] = float("nan")
    assert "NaN" in failure(assert_close, actual, expected)


def test_finite_where_inf_expected_is_a_value_mismatch():
    expected = torch.tensor([1.0, float("-inf")], dtype=torch.float64)
    message = failure(assert_close, torch.tensor([1.0, 0.0], dtype=torch.float64), expected)
    assert "1 of 2 values differ" in message
    assert "at index (1,)" in message


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_value_mismatch_names_largest_error_and_index(dtype):
    expected = distinctive(dtype)
    actual = expected.clone()
    actual[1, 2] += 0.5
    actual[0, 1] += 2.0
    message = failure(assert_close, actual, expected, name="output")
    assert message.startswith("output: 2 of 6 values differ")
    assert "largest error 2 at index (0, 1)" in message
    assert "allowed rtol=" in message


def test_value_mismatch_index_in_higher_dims():
    expected = torch.zeros(2, 3, 4, 5, dtype=torch.float64)
    actual = expected.clone()
    actual[1, 2, 0, 3] = 0.25
    message = failure(assert_close, actual, expected)
    assert "1 of 120 values differ" in message
    assert "largest error 0.25 at index (1, 2, 0, 3)" in message


def test_message_does_not_contain_expected_values():
    expected = distinctive()
    actual = torch.zeros_like(expected)
    message = failure(assert_close, actual, expected, name="output")
    assert "largest error" in message
    for value in ("123.456", "987.654", "55.5501", "7.89012", "0.314159", "271.828", "tensor("):
        assert value not in message, value


@pytest.mark.parametrize("broken", ["nan", "inf", "shape", "dtype", "values"])
def test_no_failure_leaks_expected_values(broken):
    expected = distinctive()
    actual = expected.clone()
    if broken == "nan":
        actual[0, 0] = float("nan")
    elif broken == "inf":
        actual[0, 0] = float("inf")
    elif broken == "shape":
        actual = actual[:, :2]
    elif broken == "dtype":
        actual = actual.float()
    else:
        actual = actual * 1.01
    message = failure(assert_close, actual, expected)
    assert "123.456" not in message
    assert "271.828" not in message


def test_integer_expected_uses_exact_comparison():
    expected = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert_close(expected.clone(), expected)
    actual = expected.clone()
    actual[1, 1] = 50
    message = failure(assert_close, actual, expected)
    assert "1 of 6 entries are wrong; first at index (1, 1)" in message


# -- hints and known mistakes ----------------------------------------------------------


def test_hint_is_appended():
    message = failure(
        assert_close,
        torch.zeros(2, dtype=torch.float64),
        torch.ones(2, dtype=torch.float64),
        name="out",
        hint="divide by sqrt(d)",
    )
    assert message.endswith("\nHint: divide by sqrt(d)")
    assert message.startswith("out: 2 of 2 values differ")


def test_hint_on_type_failure():
    message = failure(assert_close, None, torch.ones(2), hint="return a tensor")
    assert message == "output: expected a torch.Tensor, got NoneType\nHint: return a tensor"


def test_no_hint_no_hint_line():
    assert "Hint" not in failure(assert_close, torch.zeros(2), torch.ones(2))


def test_matching_mistake_replaces_hint():
    expected = distinctive()
    unscaled = expected * 2
    mistakes = {"forgot to divide by sqrt(d)": unscaled, "softmax over the wrong dim": expected + 1}
    message = failure(assert_close, unscaled.clone(), expected, hint="generic hint", mistakes=mistakes)
    assert message.endswith("\nHint: your result matches a common mistake: forgot to divide by sqrt(d)")
    assert "generic hint" not in message
    assert "wrong dim" not in message


def test_mistake_matches_within_loose_tolerance():
    expected = torch.ones(3, dtype=torch.float64)
    mistake = torch.zeros(3, dtype=torch.float64)
    actual = mistake + 1e-6  # not exactly the mistake's value, but close
    message = failure(assert_close, actual, expected, mistakes={"returned zeros": mistake})
    assert "your result matches a common mistake: returned zeros" in message


def test_non_matching_mistake_keeps_hint():
    expected = torch.ones(3, dtype=torch.float64)
    message = failure(
        assert_close,
        torch.zeros(3, dtype=torch.float64),
        expected,
        hint="generic hint",
        mistakes={"doubled": expected * 2, "wrong shape": torch.zeros(4, dtype=torch.float64)},
    )
    assert message.endswith("\nHint: generic hint")
    assert "common mistake" not in message


def test_mistake_in_other_dtype_is_compared_in_actual_dtype():
    expected = torch.ones(3, dtype=torch.float32)
    mistake = torch.zeros(3, dtype=torch.float64)
    message = failure(assert_close, torch.zeros(3), expected, mistakes={"zeros": mistake})
    assert "common mistake: zeros" in message


def test_mistakes_do_not_fail_a_correct_result():
    expected = torch.ones(3, dtype=torch.float64)
    assert_close(expected.clone(), expected, mistakes={"same as expected": expected.clone()})


def test_nan_failure_mentions_matching_mistake():
    expected = torch.tensor([[0.5, 0.5], [0.0, 0.0]], dtype=torch.float64)
    nan_rows = torch.tensor([[0.5, 0.5], [float("nan"), float("nan")]], dtype=torch.float64)
    message = failure(assert_close, nan_rows.clone(), expected, mistakes={"no guard for all -inf rows": nan_rows})
    assert "contains NaN (2 entries, first at index (1, 0))" in message
    assert "common mistake: no guard for all -inf rows" in message


# -- assert_equal ------------------------------------------------------------------------


def test_assert_equal_passes_for_equal_masks():
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    assert_equal(mask.clone(), mask)


def test_assert_equal_counts_wrong_entries_and_first_index():
    expected = torch.ones(4, 4, dtype=torch.bool).tril()
    actual = torch.ones(4, 4, dtype=torch.bool).triu()  # wrong everywhere off the diagonal
    message = failure(assert_equal, actual, expected, name="causal_mask(4)")
    assert message == "causal_mask(4): 12 of 16 entries are wrong; first at index (0, 1): got True, expected False"


def test_assert_equal_checks_dtype_and_shape():
    expected = torch.ones(3, 3, dtype=torch.bool)
    assert failure(assert_equal, torch.ones(3, 3), expected) == "output: dtype is torch.float32, expected torch.bool"
    message = failure(assert_equal, torch.ones(1, 3, 3, dtype=torch.bool), expected)
    assert message == "output: shape is (1, 3, 3), expected (3, 3)"


def test_assert_equal_mistake_and_hint():
    expected = torch.ones(3, 3, dtype=torch.bool).tril()
    upper = torch.ones(3, 3, dtype=torch.bool).triu()
    message = failure(assert_equal, upper.clone(), expected, hint="lower triangle", mistakes={"upper triangle": upper})
    assert message.endswith("\nHint: your result matches a common mistake: upper triangle")
    message = failure(assert_equal, ~expected, expected, hint="lower triangle", mistakes={"upper triangle": upper})
    assert message.endswith("\nHint: lower triangle")


def test_assert_equal_integer_tensors():
    expected = torch.arange(6).reshape(2, 3)
    actual = expected.clone()
    actual[1, 0] = -1
    message = failure(assert_equal, actual, expected)
    assert "1 of 6 entries are wrong; first at index (1, 0): got -1, expected 3" in message


# -- expect_sequence and expect_tensor -----------------------------------------------------


def test_expect_sequence_accepts_tuple_and_list():
    a, b = torch.ones(1), torch.zeros(1)
    assert expect_sequence((a, b), 2, name="sdpa") == (a, b)
    assert expect_sequence([a, b], 2, name="sdpa") == (a, b)


def test_expect_sequence_wrong_length():
    message = failure(expect_sequence, (torch.ones(1),) * 3, 2, name="sdpa(q, k, v)")
    assert message == "sdpa(q, k, v): expected a tuple of 2 items, got a tuple of 3 items"
    assert "list of 1 items" in failure(expect_sequence, [torch.ones(1)], 2, name="x")


def test_expect_sequence_wrong_type():
    message = failure(expect_sequence, torch.ones(2), 2, name="sdpa(q, k, v)", hint="return (output, weights)")
    assert message == "sdpa(q, k, v): expected a tuple of 2 items, got a Tensor\nHint: return (output, weights)"
    assert "got a NoneType" in failure(expect_sequence, None, 2, name="x")


def test_expect_tensor_returns_value():
    x = torch.ones(2, 3)
    assert expect_tensor(x, name="x", shape=(2, 3), dtype=torch.float32) is x
    assert expect_tensor(x, name="x") is x


# -- assert_no_forbidden_ops ------------------------------------------------------------------


def test_forbidden_op_pattern_fails_naming_the_op():
    message = failure(assert_no_forbidden_ops, {"exp", "aten::_softmax"}, ["aten::*softmax*"], name="softmax")
    assert message == "softmax: calls aten::_softmax, which this exercise asks you to write yourself"


def test_forbidden_ops_all_hits_listed_sorted():
    used = {"aten::softmax", "aten::_softmax", "aten::matmul", "softmax"}
    message = failure(assert_no_forbidden_ops, used, ["softmax", "aten::*softmax*"], name="f", hint="write it yourself")
    assert "calls aten::_softmax, aten::softmax, softmax," in message
    assert "matmul" not in message
    assert message.endswith("\nHint: write it yourself")


def test_no_forbidden_match_passes():
    assert_no_forbidden_ops({"exp", "aten::exp", "aten::sum", "aten::div"}, ["softmax", "aten::*softmax*"], name="f")
    assert_no_forbidden_ops([], ["*"], name="f")
    assert_no_forbidden_ops({"aten::_softmax"}, [], name="f")


def test_forbidden_patterns_are_case_sensitive_and_whole_name():
    # fnmatchcase: a bare name matches only that name, not names containing it
    assert_no_forbidden_ops({"aten::softmax", "Softmax"}, ["softmax"], name="f")
    message = failure(
        assert_no_forbidden_ops, {"aten::scaled_dot_product_attention"}, ["aten::*scaled_dot_product*"], name="f"
    )
    assert "aten::scaled_dot_product_attention" in message


def test_forbidden_ops_accepts_generators():
    patterns = (p for p in ["aten::*flash*"])
    message = failure(assert_no_forbidden_ops, iter(["aten::_flash_attention_forward"]), patterns, name="attention")
    assert re.search(r"calls aten::_flash_attention_forward\b", message)


def test_reference_grads_equal_autograds_bit_for_bit():
    from autograder import reference_grads

    torch.manual_seed(0)
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float32, requires_grad=True)
    grads = torch.randn(3, 5), torch.randn(3)

    def outputs():
        return torch.tanh(x @ w), (x**2).sum(-1)

    ours = reference_grads(outputs(), (p for p in (x, w)), grads)
    theirs = torch.autograd.grad(outputs(), (x, w), grads)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    (single,) = reference_grads(outputs()[0], x, grads[0])
    assert torch.equal(single, torch.autograd.grad(outputs()[0], x, grads[0])[0])
    (partial,) = reference_grads(outputs(), [x], (None, grads[1]))  # a None skips that output
    assert torch.equal(partial, torch.autograd.grad(outputs()[1], x, grads[1])[0])


def test_reference_grads_do_not_import_sympy():
    code = (
        "import sys, torch\n"
        "from autograder import reference_grads\n"
        "x = torch.randn(3, requires_grad=True)\n"
        "reference_grads(x.sin(), [x], torch.randn(3))\n"
        "print('sympy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.stdout.strip() == "False", result.stderr


def test_randn_is_seeded_drawn_in_float64_and_leaves_the_global_generator_alone():
    from autograder import randn

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = randn(3, 4, seed=7, scale=0.5)
    assert a.dtype == torch.float64
    assert torch.equal(a, randn(3, 4, seed=7, scale=0.5))
    assert not torch.equal(a, randn(3, 4, seed=8, scale=0.5))
    assert torch.equal(randn(3, 4, seed=7, scale=0.5, dtype=torch.float32), a.float())
    assert 0.2 < a.std().item() < 0.9
    assert torch.equal(torch.random.get_rng_state(), before)
