"""Public tests for week 09: run them with `course check 09`.

They compare your code with PyTorch's own F.scaled_dot_product_attention (values,
and gradients through autograd), with the masks drawn by hand, and with the
Linformer and Performer formulas written as einsums. One test records the shape
of every tensor your tiled attention creates and fails if one holds the whole
score matrix. The hidden tests check more cases (float32, other tile sizes,
Tq > Tk, huge logits, the backward pass on its own, exact BigBird masks, more
Triton shapes, fp16 and bf16).
"""

import math

import torch
import torch.nn.functional as F

from autograder import assert_close, assert_equal, assert_no_tensor_with_dims, expect_sequence, expect_tensor
from autograder.kernel_source import SHARED_MEMORY_PER_BLOCK


def rand(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def log_sum_exp_of_scores(q, k, causal):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    if causal:
        keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        scores = torch.where(keep, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    return scores.logsumexp(-1)


def test_naive_attention_matches_sdpa(student):
    q, k, v = rand(2, 2, 6, 8, seed=1), rand(2, 2, 9, 8, seed=2), rand(2, 2, 9, 8, seed=3)
    for causal in (False, True):
        out, lse = expect_sequence(student.naive_attention(q, k, v, causal), 2, name="naive_attention")
        assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), name=f"output, causal={causal}")
        assert_close(lse, log_sum_exp_of_scores(q, k, causal), name=f"LSE, causal={causal}")


def test_tiled_forward_matches_sdpa(student):
    q, k, v = rand(2, 3, 50, 16, seed=4), rand(2, 3, 37, 16, seed=5), rand(2, 3, 37, 16, seed=6)
    for causal in (False, True):
        result = student.flash_attention_forward(q, k, v, causal, 16, 16)
        out, lse = expect_sequence(result, 2, name="flash_attention_forward")
        label = f"flash_attention_forward, Tq=50, Tk=37, tiles 16x16, causal={causal}"
        assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), name=f"{label}: output")
        assert_close(lse, log_sum_exp_of_scores(q, k, causal), name=f"{label}: LSE")


def test_tiled_attention_holds_no_score_matrix(student):
    q, k, v = rand(2, 3, 50, 16, seed=7), rand(2, 3, 37, 16, seed=8), rand(2, 3, 37, 16, seed=9)
    student.flash_attention_forward.traced(q, k, v, True, 16, 16)
    assert_no_tensor_with_dims(
        student.last_shapes, (50, 37), name="flash_attention_forward", hint="keep one tile of scores at a time"
    )


def test_flash_attention_gradients_match_sdpa(student):
    q, k, v = (rand(2, 3, n, 16, seed=s).requires_grad_() for n, s in ((50, 10), (37, 11), (37, 12)))
    grad_out = rand(2, 3, 50, 16, seed=13)
    for causal in (False, True):
        out, grads = student.flash_attention.vjp(q, k, v, causal, 16, 16, grad_outputs=grad_out, trace_shapes=True)
        label = f"flash_attention, causal={causal}"
        assert_no_tensor_with_dims(student.last_shapes, (50, 37), name=f"{label}, forward and backward")
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        assert_close(out, expected.detach(), name=f"{label}: output")
        true_grads = torch.autograd.grad(expected, (q, k, v), grad_out)
        for name, got, want in zip("qkv", grads[:3], true_grads, strict=True):  # grads[3:]: the settings, None
            assert_close(got, want, name=f"{label}: d{name}")


def test_window_mask_picture(student):
    picture = [
        "xxx.....",
        "xxx.....",
        "xxxxxxxx",
        "..xxx...",
        "..xxxx..",
        "..x.xxx.",
        "..x..xxx",
        "..x...xx",
    ]
    expected = torch.tensor([[c == "x" for c in row] for row in picture])
    assert_equal(
        student.sliding_window_mask(8, 1, [2]),
        expected,
        name="sliding_window_mask(8, window=1, global_tokens=[2])",
        hint="|i - j| <= window, plus the whole row and column of each global token",
    )


def test_bigbird_mask_structure(student):
    mask = expect_tensor(
        student.bigbird_mask(40, 4, 1, 2, 1, 0),
        name="bigbird_mask(40, 4, 1, 2, 1, seed=0)",
        shape=(40, 40),
        dtype=torch.bool,
    )
    blocks = mask[::4, ::4]  # one position per block: (10, 10)
    assert_equal(blocks[0], torch.ones(10, dtype=torch.bool), name="the global block row")
    assert_equal(blocks[:, 0], torch.ones(10, dtype=torch.bool), name="the global block column")
    for row in range(1, 10):
        near = [col for col in range(10) if abs(col - row) <= 1 or col == 0]
        assert_equal(blocks[row, near], torch.ones(len(near), dtype=torch.bool), name=f"window of block row {row}")
        extra = int(blocks[row].sum()) - len(near)
        assert_equal(torch.tensor(extra), torch.tensor(2), name=f"random blocks in block row {row}")
    assert_equal(student.bigbird_mask(40, 4, 1, 2, 1, 0), mask, name="bigbird_mask again with the same seed")


def test_window_attention_matches_sdpa_with_a_band(student):
    q, k, v = rand(1, 2, 70, 16, seed=14), rand(1, 2, 70, 16, seed=15), rand(1, 2, 70, 16, seed=16)
    index = torch.arange(70)
    band = (index.view(-1, 1) - index.view(1, -1)).abs().le(4)
    out = student.sliding_window_attention.traced(q, k, v, 4, 16)
    assert_no_tensor_with_dims(student.last_shapes, (70, 70), name="sliding_window_attention")
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=band), name="sliding_window_attention")
    assert_close(
        student.masked_attention(q, k, v, band),
        F.scaled_dot_product_attention(q, k, v, attn_mask=band),
        name="masked_attention with a band",
    )


def test_linformer_matches_einsum(student):
    layer = student.Linformer(12, 3, 10, 4)
    layer.double()
    names = ["q_proj", "k_proj", "v_proj", "out_proj"]
    state = {f"{n}.weight": rand(12, 12, seed=20 + i, scale=0.5) for i, n in enumerate(names)}
    state.update({f"{n}.bias": rand(12, seed=30 + i, scale=0.5) for i, n in enumerate(names)})
    state.update({"E": rand(4, 10, seed=40, scale=0.5), "F": rand(4, 10, seed=41, scale=0.5)})
    layer.load_state_dict(state)
    x = rand(2, 10, 12, seed=42)

    def lin(name, h):
        return F.linear(h, state[f"{name}.weight"], state[f"{name}.bias"]).view(2, 10, 3, 4)

    keys = torch.einsum("kt,bthe->bhke", state["E"], lin("k_proj", x))
    values = torch.einsum("kt,bthe->bhke", state["F"], lin("v_proj", x))
    weights = torch.einsum("bthe,bhke->bhtk", lin("q_proj", x), keys).div(2.0).softmax(-1)  # sqrt(Dh) = 2
    mixed = torch.einsum("bhtk,bhke->bthe", weights, values).reshape(2, 10, 12)
    expected = F.linear(mixed, state["out_proj.weight"], state["out_proj.bias"])
    assert_close(layer(x), expected, name="Linformer(12, 3, seq_len=10, k_proj_dim=4)")


def test_performer_matches_its_quadratic_form(student):
    q, k, v = rand(1, 2, 12, 16, seed=50), rand(1, 2, 9, 16, seed=51), rand(1, 2, 9, 16, seed=52)
    w = rand(32, 16, seed=53)
    qs, ks = q / 2.0, k / 2.0  # D ** 0.25 = 2

    def positive_features(x):
        return torch.einsum("bhtd,md->bhtm", x, w).sub(x.pow(2).sum(-1, keepdim=True) / 2).exp().div(math.sqrt(32))

    assert_close(student.favor_features(qs, w), positive_features(qs), name="favor_features")
    kernel = torch.einsum("bhqm,bhkm->bhqk", positive_features(qs), positive_features(ks))  # fine for a test
    expected = torch.einsum("bhqk,bhkd->bhqd", kernel, v) / kernel.sum(-1, keepdim=True)
    assert_close(student.performer_attention(q, k, v, w), expected, name="performer_attention")


def test_triton_kernel_matches_sdpa(student_files):
    q, k, v = (rand(1, 2, n, 16, seed=60 + i).float() for i, n in enumerate((33, 40, 40)))
    out, lse = expect_sequence(student_files["flash_triton"].run_triton(q, k, v, True, 16, 16), 2, name="run_triton")
    q64, k64, v64 = q.double(), k.double(), v.double()
    expected = F.scaled_dot_product_attention(q64, k64, v64, is_causal=True).float()
    assert_close(out, expected, name="run_triton, Tq=33, Tk=40, D=16, causal, float32")
    assert_close(lse, log_sum_exp_of_scores(q64, k64, True).float(), name="run_triton LSE")


def test_triton_kernel_compiles_for_a_gpu(student_files):
    """Your kernel compiled (not run) for an H100, with the tiles your wrapper picks there; no GPU needed.

    The interpreter runs code a GPU compiler rejects (``tl.dot`` of an fp32 tile by an fp16
    one, tiles under 16); this compiles it as a GPU would, in a fresh process in the sandbox.
    """
    q, k, v = (rand(1, 2, 256, 64, seed=70 + i).half() for i in range(3))
    report = student_files["flash_triton"].triton_flash_attention.compile_for_gpu(90, q, k, v, True)
    assert report.get("ok"), f"compiling for sm_90 failed ({report.get('stage')}): {report.get('error')}"
    assert all(kernel["shared"] <= SHARED_MEMORY_PER_BLOCK[90] for kernel in report["kernels"]), report["kernels"]
