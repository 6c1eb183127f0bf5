"""Public tests for week 01: run them with `course check 01`.

They compare your functions with PyTorch's own ops on small inputs. The hidden
tests check more cases (other shapes and dtypes, masks, gradients, large values).
"""

import torch
import torch.nn.functional as F

from autograder import assert_close, assert_equal, assert_no_forbidden_ops, expect_sequence


def test_softmax_rows_sum_to_one(student):
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    assert_close(student.softmax(x), torch.softmax(x, dim=-1), name="softmax(x)")
    assert_no_forbidden_ops(student.last_ops, ["*softmax*"], name="softmax")


def test_causal_mask_small(student):
    expected = torch.tensor([[True, False, False], [True, True, False], [True, True, True]])
    assert_equal(student.causal_mask(3), expected, name="causal_mask(3)", hint="True = may attend; j <= i.")


def test_padding_mask_shape(student):
    mask = student.padding_mask(torch.tensor([2, 4]), 4)
    expected = torch.tensor([[True, True, False, False], [True, True, True, True]])[:, None, None, :]
    assert_equal(mask, expected, name="padding_mask([2, 4], 4)", hint="shape (batch, 1, 1, seq_len).")


def test_attention_matches_pytorch(student):
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 4, 8, generator=generator) for _ in range(3))
    output, weights = expect_sequence(student.scaled_dot_product_attention(q, k, v), 2, name="attention")
    assert_close(output, F.scaled_dot_product_attention(q, k, v), name="attention output")
    assert_close(weights.sum(-1), torch.ones(2, 4), name="attention weights summed over keys")


def test_attention_with_causal_mask(student):
    generator = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 5, 8, generator=generator) for _ in range(3))
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    output, _ = expect_sequence(student.scaled_dot_product_attention(q, k, v, mask), 2, name="attention")
    assert_close(
        output,
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        name="causal attention output",
        hint="mask is True where attending is allowed; fill the other scores with -inf before the softmax.",
    )
