"""Hidden tests for week 03 (positional encodings).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader; ``tests/test_week03_reference.py`` checks that reference against
float64 formulas and against `transformers` (T5's buckets and bias, Llama's
rotary embedding, BLOOM's ALiBi, DistilBERT's sinusoidal table). Lengths go
above 128 so that T5's bucket clamping matters.
"""

from __future__ import annotations

import pytest
import torch

from autograder import assert_close, assert_equal, expect_sequence, expect_tensor, randn, reference_grads
from autograder.student_errors import StudentException

# float32 angles p * w carry a rounding error of about p * 6e-8, which sin and cos pass on:
# two correct float32 implementations differ by up to ~3e-5 at positions near 300.
FP32_ANGLES = {"rtol": 0.0, "atol": 1e-4}


def positions(start: int, stop: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.arange(start, stop, dtype=dtype)


# -- sinusoidal ----------------------------------------------------------------------------


def sinusoidal_mistakes(pos: torch.Tensor, d_model: int, base: float) -> dict[str, torch.Tensor]:
    half = torch.arange(0, d_model, 2, dtype=pos.dtype)
    angles = pos[:, None] * base ** -(half / d_model)
    every = pos[:, None] * base ** -(torch.arange(d_model, dtype=pos.dtype) / d_model)
    per_column = torch.where(torch.arange(d_model) % 2 == 0, every.sin(), every.cos())
    return {
        "sin and cos are concatenated ([sin…, cos…]); the paper interleaves them (even columns sin, odd cos)": torch.cat(
            [angles.sin(), angles.cos()], dim=-1
        ),
        "the exponent uses the column index j instead of 2i = j - j % 2 (pairs must share a frequency)": per_column,
        "sin and cos are swapped (even columns must be sin)": torch.stack([angles.cos(), angles.sin()], -1).flatten(1),
    }


@pytest.mark.parametrize(("start", "length", "d_model", "base"), [(0, 150, 64, 10000.0), (37, 9, 6, 100.0)])
def test_sinusoidal_values(student, reference, start, length, d_model, base):
    pos = positions(start, start + length)
    assert_close(
        student.sinusoidal_encoding(pos, d_model, base=base),
        reference.sinusoidal_encoding(pos, d_model, base=base),
        name=f"sinusoidal_encoding(positions {start}…{start + length - 1}, d_model={d_model}, base={base:g}) in float64",
        mistakes=sinusoidal_mistakes(pos, d_model, base),
        hint="PE[p, 2i] = sin(p / base^(2i/D)), PE[p, 2i+1] = cos(p / base^(2i/D))",
    )


def test_sinusoidal_float32(student, reference):
    pos = positions(0, 300, torch.float32)
    assert_close(
        student.sinusoidal_encoding(pos, 32),
        reference.sinusoidal_encoding(pos, 32),
        name="sinusoidal_encoding(300 float32 positions, d_model=32)",
        hint="compute in the dtype of `positions`; don't hard-code float64 or float32",
        **FP32_ANGLES,
    )


# -- learned -------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 33])
def test_learned_embedding(student, reference, offset):
    ref = reference.LearnedPositionalEmbedding(50, 12).double()
    mine = student.LearnedPositionalEmbedding(50, 12)
    mine.double()
    state = {"weight": randn(50, 12, seed=1, scale=0.5)}
    ref.load_state_dict(state)
    mine.load_state_dict(state)
    x = randn(3, 17, 12, seed=2)
    assert_close(
        mine(x, offset=offset),
        ref(x, offset=offset),
        name=f"LearnedPositionalEmbedding(50, 12) on (3, 17, 12), offset={offset}",
        mistakes={"the offset is ignored: rows 0…T-1 are added": x + state["weight"][:17]},
        hint="add rows offset … offset+T-1 of `weight`, the same for every batch element",
    )


def test_learned_embedding_gradient(student, reference):
    ref = reference.LearnedPositionalEmbedding(20, 4).double()
    mine = student.LearnedPositionalEmbedding(20, 4)
    mine.double()
    state = {"weight": randn(20, 4, seed=3, scale=0.5)}
    ref.load_state_dict(state)
    mine.load_state_dict(state)
    x, grad_output = randn(2, 5, 4, seed=4).requires_grad_(), randn(2, 5, 4, seed=5)
    _, grads = mine.vjp(x, 6, grad_outputs=grad_output)
    expected = reference_grads(ref(x, 6), [x, ref.weight], grad_output)
    assert_close(grads[0], expected[0], name="gradient with respect to x")
    assert_close(
        mine.weight.grad.fetch(),
        expected[1],
        name="gradient of weight (rows 6…10 get the batch's summed gradient, the rest zero)",
        hint="keep `weight` an nn.Parameter and index it; don't copy it into a new tensor",
    )


@pytest.mark.parametrize(("length", "offset"), [(17, 34), (51, 0), (1, 50)], ids=["17-at-34", "51-at-0", "1-at-50"])
def test_learned_embedding_past_the_table(student, length, offset):
    """Positions past the table raise ValueError: no silent clamping, wrapping or a broadcast error."""
    mine = student.LearnedPositionalEmbedding(50, 12)
    label = f"LearnedPositionalEmbedding(50, 12) on (3, {length}, 12) with offset={offset}"
    try:
        mine(randn(3, length, 12, dtype=torch.float32, seed=13), offset=offset)
    except StudentException as exc:
        if "raised ValueError" not in str(exc):
            raise AssertionError(f"{label} should raise ValueError; instead {exc}") from None
        return
    raise AssertionError(
        f"{label} returned normally; positions up to {offset + length - 1} do not exist in a 50-row table\n"
        "Hint: raise ValueError when offset + T > max_len (don't clamp or wrap the positions)"
    )


def test_learned_embedding_init(student):
    """`weight` starts as N(0, 0.02²) (BERT's and GPT-2's initializer_range), in float32."""
    mine = student.LearnedPositionalEmbedding(4096, 64)
    weight = expect_tensor(
        mine.weight.fetch(), name="LearnedPositionalEmbedding(4096, 64).weight", shape=(4096, 64), dtype=torch.float32
    )
    # 262,144 draws: the sample std is within 0.2% of 0.02 and the mean within 4e-5 of 0 (one standard error);
    # the bounds below are over 7 standard errors wide.
    std, mean = float(weight.double().std()), float(weight.double().mean())
    if not (abs(std - 0.02) < 0.0006 and abs(mean) < 3e-4):
        raise AssertionError(
            f"LearnedPositionalEmbedding(4096, 64).weight has mean {mean:.3g} and std {std:.3g}; "
            "expected a normal distribution with mean 0 and std 0.02\n"
            "Hint: nn.Parameter(torch.randn(max_len, d_model) * 0.02), or nn.init.normal_(weight, std=0.02)"
        )


# -- T5 relative bias ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bidirectional", "num_buckets", "max_distance"),
    [(True, 32, 128), (False, 32, 128), (True, 16, 20), (False, 16, 20)],
)
def test_relative_position_bucket(student, reference, bidirectional, num_buckets, max_distance):
    relative = torch.arange(-400, 401).reshape(1, -1)
    expected = reference.relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    flipped = reference.relative_position_bucket(-relative, bidirectional, num_buckets, max_distance)
    mistakes = {"the sign is reversed: relative_position is key minus query": flipped}
    if bidirectional:
        whole = reference.relative_position_bucket(relative, False, num_buckets, max_distance)
        mistakes["all buckets serve one direction; bidirectional halves them"] = whole
    assert_equal(
        student.relative_position_bucket(relative, bidirectional, num_buckets, max_distance),
        expected,
        name=f"relative_position_bucket(-400…400, bidirectional={bidirectional}, num_buckets={num_buckets}, max_distance={max_distance})",
        mistakes=mistakes,
        hint=f"exact buckets below n/2, log-spaced after, and distances past {max_distance} in the last bucket n - 1",
    )


def test_relative_position_bucket_int32_any_shape(student, reference):
    """Any integer dtype and shape in, torch.long buckets of the same shape out."""
    relative = torch.arange(-300, 300, 10, dtype=torch.int32).reshape(3, 4, 5)
    assert_equal(
        student.relative_position_bucket(relative, True, 32, 128),
        reference.relative_position_bucket(relative, True, 32, 128),
        name="relative_position_bucket(an int32 tensor of shape (3, 4, 5)) -> torch.long (3, 4, 5)",
        hint="the buckets are torch.long whatever the integer dtype of relative_position (use .long())",
    )


@pytest.mark.parametrize(("bidirectional", "q_len", "k_len"), [(True, 140, 200), (False, 130, 130), (True, 1, 150)])
def test_relative_position_bias(student, reference, bidirectional, q_len, k_len):
    ref = reference.RelativePositionBias(6, bidirectional=bidirectional)
    mine = student.RelativePositionBias(6, bidirectional=bidirectional)
    state = {"relative_attention_bias.weight": randn(32, 6, dtype=torch.float32, seed=6, scale=0.5)}
    ref.load_state_dict(state)
    mine.load_state_dict(state)
    with torch.no_grad():
        expected = ref(q_len, k_len)
    assert_close(
        mine(q_len, k_len),
        expected,
        name=f"RelativePositionBias(6 heads, bidirectional={bidirectional})({q_len}, {k_len}) -> (1, H, Tq, Tk)",
        hint="relative position = key position - query position; look up the bucket's row and move heads in front",
    )


@pytest.mark.parametrize(
    ("num_buckets", "max_distance", "bidirectional", "q_len", "k_len"),
    [(16, 20, False, 30, 45), (8, 64, True, 70, 90)],
    ids=["16-buckets-20-causal", "8-buckets-64-bidirectional"],
)
def test_relative_position_bias_config(student, reference, num_buckets, max_distance, bidirectional, q_len, k_len):
    """The module passes its own num_buckets, max_distance and bidirectional to the bucketing."""
    config = {"num_buckets": num_buckets, "max_distance": max_distance, "bidirectional": bidirectional}
    ref = reference.RelativePositionBias(4, **config)
    mine = student.RelativePositionBias(4, **config)
    state = {"relative_attention_bias.weight": randn(num_buckets, 4, dtype=torch.float32, seed=14, scale=0.5)}
    ref.load_state_dict(state)
    mine.load_state_dict(state)
    with torch.no_grad():
        expected = ref(q_len, k_len)
    shown = ", ".join(f"{key}={value}" for key, value in config.items())
    assert_close(
        mine(q_len, k_len),
        expected,
        name=f"RelativePositionBias(4 heads, {shown})({q_len}, {k_len})",
        hint="bucket with the module's own num_buckets, max_distance and bidirectional, not the defaults",
    )


# -- RoPE ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "d_head", "base"), [(0, 64, 10000.0), (100, 16, 500000.0)])
def test_rope_cos_sin(student, reference, start, d_head, base):
    pos = positions(start, start + 150)
    cos, sin = expect_sequence(student.rope_cos_sin(pos, d_head, base=base), 2, name="rope_cos_sin")
    want_cos, want_sin = reference.rope_cos_sin(pos, d_head, base=base)
    label = f"rope_cos_sin(positions {start}…{start + 149}, d_head={d_head}, base={base:g})"
    angles = pos[:, None] * base ** -(torch.arange(0, d_head, 2, dtype=torch.float64) / d_head)
    interleaved = angles.repeat_interleave(2, dim=-1)
    full = pos[:, None] * base ** -(torch.arange(d_head, dtype=torch.float64) / d_head)
    hint = "angles p·base^(-2i/Dh) for i < Dh/2, then the same Dh/2 angles again (cat, not repeat_interleave)"
    mistakes = {
        "angles are interleaved [θ0, θ0, θ1, θ1, …] (GPT-J's layout); Llama's half-split layout repeats the whole list": interleaved.cos(),
        "the frequencies use every index j < Dh instead of 2i": full.cos(),
    }
    assert_close(cos, want_cos, name=f"{label}: cos", mistakes=mistakes, hint=hint)
    assert_close(sin, want_sin, name=f"{label}: sin", hint=hint)


def test_rotate_half(student, reference):
    x = randn(2, 3, 5, 8, seed=7)
    first, second = x.chunk(2, dim=-1)
    assert_close(
        student.rotate_half(x),
        reference.rotate_half(x),
        name="rotate_half(x of shape (2, 3, 5, 8))",
        mistakes={
            "the sign is on the wrong half: [x2, -x1] rotates the other way": torch.cat([second, -first], -1),
            "pairs are adjacent features (GPT-J's interleaved layout); Llama pairs i with i + Dh/2": torch.stack(
                [-x[..., 1::2], x[..., 0::2]], -1
            ).flatten(-2),
        },
        hint="[x1, x2] -> [-x2, x1] with x1, x2 the halves of the last dim",
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_apply_rope(student, reference, dtype):
    x = randn(2, 3, 150, 32, dtype=dtype, seed=8)
    cos, sin = reference.rope_cos_sin(positions(0, 150, dtype), 32)
    tolerance = FP32_ANGLES if dtype == torch.float32 else {}
    assert_close(
        student.apply_rope(x, cos, sin),
        reference.apply_rope(x, cos, sin),
        name=f"apply_rope(x of shape (2, 3, 150, 32), {str(dtype).removeprefix('torch.')})",
        mistakes={"rotated the wrong way (x·cos - rotate_half(x)·sin)": x * cos - reference.rotate_half(x) * sin},
        hint="x * cos + rotate_half(x) * sin",
        **tolerance,
    )


def test_apply_rope_other_shapes(student, reference):
    """cos/sin broadcast: x (T, Dh) with (T, Dh), and x (B, H, T, Dh) with Llama's (B, 1, T, Dh)."""
    cos, sin = reference.rope_cos_sin(positions(5, 25), 16)
    x = randn(20, 16, seed=15)
    assert_close(
        student.apply_rope(x, cos, sin),
        reference.apply_rope(x, cos, sin),
        name="apply_rope(x of shape (20, 16), cos and sin of shape (20, 16))",
        hint="work on the last dim only (x.chunk(2, dim=-1)), whatever the number of leading dims",
    )
    x = randn(2, 3, 20, 16, seed=16)
    cos4, sin4 = cos.expand(2, 1, 20, 16), sin[None, None].expand(2, 1, 20, 16)
    assert_close(
        student.apply_rope(x, cos4, sin4),
        reference.apply_rope(x, cos4, sin4),
        name="apply_rope(x of shape (2, 3, 20, 16), cos and sin of shape (2, 1, 20, 16))",
        hint="let cos and sin broadcast as given; don't add dims to them",
    )


def test_rope_scores_depend_only_on_relative_position(student):
    """RoPE's defining property, checked on the student's own functions: shifting every position changes no score."""
    q, k = randn(1, 4, 140, 16, seed=9), randn(1, 4, 140, 16, seed=10)
    scores = []
    for shift in (0.0, 53.0):
        cos, sin = expect_sequence(student.rope_cos_sin(positions(0, 140) + shift, 16), 2, name="rope_cos_sin")
        scores.append(student.apply_rope(q, cos, sin) @ student.apply_rope(k, cos, sin).transpose(-2, -1))
    assert_close(
        scores[1],
        scores[0],
        name="q·k scores with every position shifted by 53, against unshifted",
        hint="rotate queries and keys with the same angles per position; then q_m·k_n depends only on m - n",
        rtol=1e-9,
        atol=1e-9,
    )
    unrotated = q @ k.transpose(-2, -1)
    if torch.allclose(scores[0], unrotated):
        raise AssertionError("apply_rope: the scores equal those without rotation: nothing was rotated")


def test_apply_rope_gradient(student, reference):
    x, grad_output = randn(2, 2, 7, 8, seed=11).requires_grad_(), randn(2, 2, 7, 8, seed=12)
    cos, sin = reference.rope_cos_sin(positions(3, 10), 8)
    _, grads = student.apply_rope.vjp(x, cos, sin, grad_outputs=grad_output)
    (expected,) = reference_grads(reference.apply_rope(x, cos, sin), [x], grad_output)
    assert_close(
        grads[0],
        expected,
        name="gradient of apply_rope with respect to x (the inverse rotation of the output gradient)",
        hint="keep it differentiable: no in-place edits of x, no .detach()",
    )


# -- ALiBi ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n_heads", [8, 16, 6, 12, 5, 3, 1])
def test_alibi_slopes(student, reference, n_heads):
    naive = torch.tensor([2.0 ** (-8.0 * (i + 1) / n_heads) for i in range(n_heads)])
    assert_close(
        student.alibi_slopes(n_heads),
        reference.alibi_slopes(n_heads),
        name=f"alibi_slopes({n_heads}) (float32)",
        mistakes={
            "the power-of-two formula 2^(-8(i+1)/H) used for a head count that is not a power of two": naive,
        },
        hint="not a power of two: the slopes of the largest power of two P below H, then every other slope of 2P",
    )


@pytest.mark.parametrize(("q_len", "k_len"), [(150, 150), (3, 131)])
def test_alibi_bias(student, reference, q_len, k_len):
    slopes = reference.alibi_slopes(6).double()
    expected = reference.alibi_bias(slopes, q_len, k_len)
    query = torch.arange(q_len, dtype=torch.float64)[:, None]
    key = torch.arange(k_len, dtype=torch.float64)[None, :]
    assert_close(
        student.alibi_bias(slopes, q_len, k_len),
        expected,
        name=f"alibi_bias(6 slopes, q_len={q_len}, k_len={k_len}) -> (H, Tq, Tk)",
        mistakes={
            "the bias is positive: ALiBi subtracts slope × distance": -expected,
            "queries start at position 0; they are the last Tq of the Tk positions": -slopes[:, None, None]
            * (query - key).abs(),
        },
        hint="query i sits at position i + Tk - Tq; bias = -slope × |query position - key position|",
    )
