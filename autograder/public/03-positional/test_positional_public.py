"""Public tests for week 03: run them with `course check 03`.

They check small cases against the formulas of the papers, written out in plain
Python. The hidden tests check more (long sequences where T5's buckets clamp,
float32, gradients, other head counts and bases).
"""

import math

import torch

from autograder import assert_close, assert_equal, expect_sequence


def test_sinusoidal_small_table(student):
    got = student.sinusoidal_encoding(torch.arange(4, dtype=torch.float64), 4)
    expected = torch.tensor(
        [[f(p / 10000 ** ((j - j % 2) / 4)) for j, f in enumerate([math.sin, math.cos] * 2)] for p in range(4)],
        dtype=torch.float64,
    )
    assert_close(got, expected, name="sinusoidal_encoding(positions 0…3, d_model=4)", hint="even columns sin, odd cos")


def test_learned_embedding_small(student):
    layer = student.LearnedPositionalEmbedding(10, 3)
    layer.double()
    table = torch.arange(30, dtype=torch.float64).reshape(10, 3)
    layer.load_state_dict({"weight": table})
    x = torch.zeros(2, 4, 3, dtype=torch.float64)
    assert_close(layer(x, offset=2), table[2:6].expand(2, 4, 3), name="LearnedPositionalEmbedding, offset 2")


def test_t5_buckets_near_and_far(student):
    relative = torch.tensor([-200, -128, -40, -9, -8, -1, 0, 1, 7, 8, 20, 200])
    # Computed by hand from T5's rule with 32 buckets and max distance 128 (16 per direction, 8 exact).
    expected = torch.tensor([15, 15, 12, 8, 8, 1, 0, 17, 23, 24, 26, 31])
    assert_equal(
        student.relative_position_bucket(relative, True, 32, 128),
        expected,
        name="relative_position_bucket(bidirectional, 32 buckets, max distance 128)",
    )


def test_rope_rotates_pairs(student):
    d_head, p = 4, 3.0
    cos, sin = expect_sequence(student.rope_cos_sin(torch.tensor([p], dtype=torch.float64), d_head), 2, name="rope")
    x = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]], dtype=torch.float64)  # pairs (1, 3) and (2, 4)
    rotated = student.apply_rope(x, cos, sin)
    expected = []
    for i, (a, b) in enumerate([(1.0, 3.0), (2.0, 4.0)]):
        angle = p * 10000 ** (-2 * i / d_head)
        expected.append((a * math.cos(angle) - b * math.sin(angle), a * math.sin(angle) + b * math.cos(angle)))
    want = torch.tensor([[[[expected[0][0], expected[1][0], expected[0][1], expected[1][1]]]]], dtype=torch.float64)
    assert_close(rotated, want, name="apply_rope of one 4-dim vector at position 3", hint="pair i with i + Dh/2")


def test_alibi_slopes_power_of_two_and_not(student):
    assert_close(student.alibi_slopes(4), torch.tensor([0.25, 0.0625, 0.015625, 0.00390625]), name="alibi_slopes(4)")
    # 6 heads: the 4 slopes for 4 heads, then the 1st and 3rd of the 8-head slopes (1/2 and 1/8).
    assert_close(
        student.alibi_slopes(6),
        torch.tensor([0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]),
        name="alibi_slopes(6)",
    )


def test_alibi_bias_small(student):
    bias = student.alibi_bias(torch.tensor([0.5], dtype=torch.float64), 2, 3)
    expected = torch.tensor([[[-0.5, 0.0, -0.5], [-1.0, -0.5, 0.0]]], dtype=torch.float64)
    assert_close(bias, expected, name="alibi_bias(slope 0.5, q_len=2, k_len=3)", hint="queries are the last Tq")
