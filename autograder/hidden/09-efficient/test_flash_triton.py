"""Hidden tests for week 09, part 2 (flash_triton.py): the Triton forward kernel.

The student's second file is reached through ``student_files["flash_triton"]``
and its ``run_triton`` (given in the skeleton): CPU tensors in and out. Without
a GPU the kernel runs in Triton's interpreter (``TRITON_INTERPRET=1``) on small
shapes, fp32 and upcast fp16/bf16; with a GPU in the grader, the interpreter cases
run on the GPU, and ``test_triton_long_sequences`` uses long sequences (up to
1024) in fp16 and bf16 there, and shorter ones in the interpreter.

Expected values: the reference ``naive_attention`` in float64 of the very inputs
the kernel gets, rounded to the kernel's output dtype.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import CheckFailed, assert_close, assert_no_forbidden_ops, expect_sequence, randn
from autograder.kernel_source import SHARED_MEMORY_PER_BLOCK
from autograder.testing import forbidden

GPU = torch.cuda.is_available()
# The week's forbidden ops but nn.MultiheadAttention's: the kernel is called on q, k and v directly.
FORBIDDEN = [op for op in forbidden("09-efficient") if op != "*multi_head_attention*"]
DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def inputs(b, h, tq, tk, d, dtype, seed, layout="contiguous"):
    if layout == "BTHD":  # (B, T, H, D) memory seen as (B, H, T, D): strides the kernel must honour
        return tuple(randn(b, t, h, d, dtype=dtype, seed=seed + i).transpose(1, 2) for i, t in enumerate((tq, tk, tk)))
    return tuple(randn(b, h, t, d, dtype=dtype, seed=seed + i) for i, t in enumerate((tq, tk, tk)))


def tiled_bug(q, k, v, causal, block, bug):
    """What a kernel with a known bug returns, in float64 (one program per ``block`` query rows)."""
    q, k, v = q.double(), k.double(), v.double()
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    seq_q, seq_k = scores.shape[-2:]
    rows, cols = torch.arange(seq_q)[:, None], torch.arange(seq_k)[None, :]
    allowed = cols <= rows if causal else torch.ones(seq_q, seq_k, dtype=torch.bool)
    if bug == "causal diagonal":
        allowed = cols < rows
    if bug == "no key mask":  # keys past Tk load as zeros and score 0 in the last tile
        pad = -seq_k % block
        scores = torch.cat([scores, torch.zeros(*scores.shape[:-1], pad, dtype=torch.float64)], -1)
        v = torch.cat([v, torch.zeros(*v.shape[:-2], pad, v.size(-1), dtype=torch.float64)], -2)
        cols = torch.arange(seq_k + pad)[None, :]
        allowed = cols <= rows if causal else torch.ones(seq_q, seq_k + pad, dtype=torch.bool)
    scores = scores.masked_fill(~allowed, float("-inf"))
    if bug == "no rescale":  # each tile's exp(s - m_tile) summed as if the max never changed
        out, lse = [], []
        n_tiles = -(-scores.size(-1) // block)
        tiles = [scores[..., j * block : (j + 1) * block] for j in range(n_tiles)]
        maxes = [t.amax(-1, keepdim=True) for t in tiles]
        m = torch.stack([mx.squeeze(-1) for mx in maxes], -1).cummax(-1).values
        weights = [torch.exp(t - m[..., j : j + 1]).nan_to_num(0.0) for j, t in enumerate(tiles)]
        num = sum(w @ v[..., j * block : (j + 1) * block, :] for j, w in enumerate(weights))
        den = sum(w.sum(-1, keepdim=True) for w in weights)
        return num / den, None
    lse = torch.logsumexp(scores, -1)
    out = torch.exp(scores - lse[..., None]) @ v
    return out, (lse - scores.amax(-1) if bug == "lse without max" else lse)


def check_kernel(
    student_files, reference, shape, causal, dtype, seed, layout="contiguous", blocks=(16, 16), **tolerance
):
    """``blocks`` (16, 16) in the interpreter cases; (None, None) lets the wrapper pick its GPU tiles."""
    b, h, tq, tk, d = shape
    q, k, v = inputs(b, h, tq, tk, d, dtype, seed, layout)
    result = student_files["flash_triton"].run_triton(q, k, v, causal, *blocks)
    where = "on the GPU" if GPU else "in the interpreter"
    label = f"run_triton {where}: B={b}, H={h}, Tq={tq}, Tk={tk}, D={d}, causal={causal}, {DTYPE_NAMES[dtype]}" + (
        ", inputs laid out (B, T, H, D)" if layout != "contiguous" else ""
    )
    out, lse = expect_sequence(result, 2, name=label, hint="triton_flash_attention returns (out, lse)")
    want_out, want_lse = reference.naive_attention(q.double(), k.double(), v.double(), causal)
    mistakes_out, mistakes_lse = {}, {}
    for bug, text in [
        ("no rescale", "acc and l are not rescaled by exp(m_i - m_new) when the running max grows"),
        ("no key mask", "keys past Tk in the last tile are not masked to -inf (a masked load gives 0, not -inf)"),
        ("causal diagonal", "the causal mask hides the diagonal: keep key j <= i"),
        ("lse without max", "the LSE misses the running max: store m_i + log(l_i)"),
    ]:
        if bug == "causal diagonal" and not causal:
            continue
        bad_out, bad_lse = tiled_bug(q, k, v, causal, 16, bug)
        mistakes_out[text] = bad_out.to(dtype)
        if bad_lse is not None:
            mistakes_lse[text] = bad_lse.float()
    hint = (
        "one program per (query tile, batch x head); mask loads with offs < length; scores of keys >= Tk (and "
        "j > i when causal) to -inf; online softmax in fp32; store with the row mask"
    )
    assert_close(out, want_out.to(dtype), name=f"{label}: output", mistakes=mistakes_out, hint=hint, **tolerance)
    assert_close(
        lse,
        want_lse.float(),
        name=f"{label}: LSE (B, H, Tq), float32",
        mistakes=mistakes_lse,
        hint="lse = m_i + log(l_i), natural log, stored as float32",
        **({"rtol": 1e-5, "atol": 1e-4} if dtype != torch.float32 and GPU else {}),  # fp16 scores on a GPU
    )


# (B, H, Tq, Tk, D)
INTERPRETER = {
    "T40-D16": ((2, 2, 40, 40, 16), False),
    "T40-D16-causal": ((2, 2, 40, 40, 16), True),
    "T33-D32": ((2, 2, 33, 33, 32), False),
    "T33-D32-causal": ((2, 2, 33, 33, 32), True),
    "Tq33-Tk47-D64": ((1, 2, 33, 47, 64), False),
    "Tq47-Tk33-D64-causal": ((1, 2, 47, 33, 64), True),
    "T40-D64-causal": ((1, 2, 40, 40, 64), True),
    "Tq33-Tk40-D32-causal": ((2, 2, 33, 40, 32), True),
}


@pytest.mark.parametrize("case", list(INTERPRETER))
def test_triton_forward(student_files, reference, case):
    shape, causal = INTERPRETER[case]
    check_kernel(student_files, reference, shape, causal, torch.float32, seed=10)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_triton_strided_inputs(student_files, reference, causal):
    check_kernel(student_files, reference, (2, 2, 33, 40, 32), causal, torch.float32, seed=20, layout="BTHD")


# Head sizes that are not powers of two: BLOCK_D is the next power of two (32, 64) and the features past D are
# masked on load (an unmasked load reads the next row's features, or past the tensor's end).
ODD_HEAD_SIZES = {
    "T20-Tk27-D24-causal": ((1, 2, 20, 27, 24), True),
    "Tq5-Tk37-D40": ((2, 1, 5, 37, 40), False),
}


@pytest.mark.parametrize("case", list(ODD_HEAD_SIZES))
def test_triton_head_size_not_a_power_of_two(student_files, reference, case):
    shape, causal = ODD_HEAD_SIZES[case]
    check_kernel(student_files, reference, shape, causal, torch.float32, seed=15)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_triton_half_precision(student_files, reference, dtype):
    # In the interpreter the tiles are upcast to fp32: only the output's rounding differs (torch's per-dtype
    # tolerances). On a GPU the probabilities go through the tensor cores in half precision too.
    loose = (
        {} if not GPU else ({"rtol": 1e-2, "atol": 3e-3} if dtype == torch.float16 else {"rtol": 3e-2, "atol": 2e-2})
    )
    check_kernel(student_files, reference, (1, 2, 33, 40, 32), True, dtype, seed=30, **loose)


# name: (shape on a GPU, shape in the interpreter, causal, dtype). Each case runs everywhere, so the week's
# points are the same with and without a GPU (`course validate` compares them with course.yml); with a GPU
# the shapes are long and the tiles the wrapper's own.
LONG = {
    "fp16": ((2, 4, 1024, 1024, 64), (1, 2, 100, 75, 64), False, torch.float16),
    "fp16-causal": ((2, 4, 1000, 1000, 64), (1, 2, 75, 100, 64), True, torch.float16),
    "bf16-causal-D128": ((1, 4, 777, 777, 128), (1, 1, 50, 50, 128), True, torch.bfloat16),
    "fp16-D16": ((1, 2, 512, 999, 16), (1, 2, 40, 100, 16), False, torch.float16),
}


@pytest.mark.parametrize("case", list(LONG))
def test_triton_long_sequences(student_files, reference, case):
    gpu_shape, cpu_shape, causal, dtype = LONG[case]
    if GPU:
        # Half-precision inputs, probabilities rounded to half before the P @ V product: errors of a few 1e-3.
        loose = {"rtol": 1e-2, "atol": 3e-3} if dtype == torch.float16 else {"rtol": 3e-2, "atol": 2e-2}
        check_kernel(student_files, reference, gpu_shape, causal, dtype, seed=40, blocks=(None, None), **loose)
    else:  # the interpreter upcasts every tile: only the output's rounding differs (torch's per-dtype tolerances)
        check_kernel(student_files, reference, cpu_shape, causal, dtype, seed=40)


def test_triton_uses_no_fused_attention(student_files, reference):
    q, k, v = inputs(1, 2, 20, 20, 16, torch.float32, seed=50)
    module = student_files["flash_triton"]
    out, _ = expect_sequence(module.run_triton(q, k, v, True, 16, 16), 2, name="run_triton")
    assert_no_forbidden_ops(
        module.last_ops, FORBIDDEN, name="run_triton", hint="the attention must come from your Triton kernel"
    )
    want, _ = reference.naive_attention(q.double(), k.double(), v.double(), True)
    assert_close(out, want.float(), name="run_triton, B=1, H=2, T=20, D=16, causal")


# The cards the compile targets stand for (their shared memory per block: kernel_source.SHARED_MEMORY_PER_BLOCK).
CARD = {80: "A100", 90: "H100"}
COMPILE_HINTS = {
    "compile": "the interpreter runs code a GPU compiler rejects: give tl.dot operands of one dtype "
    "(e.g. p.to(v.dtype)), tiles of at least 16 in every dimension, and constexpr block sizes",
    "wrapper": "in GPU mode (INTERPRET False) your wrapper must accept tensors the grader gives it "
    "and launch the kernel; only run_triton moves tensors to the GPU",
    "load": "your file must import with a GPU present (torch.cuda.is_available() True)",
    "none": "triton_flash_attention must launch your @triton.jit kernel",
}
# name: (compute capability, dtype, (B, H, T, D), causal): what the wrapper launches on that GPU.
GPU_COMPILE = {"sm90-fp16-D64-causal": (90, torch.float16, (1, 2, 256, 64), True)}


@pytest.mark.parametrize("case", list(GPU_COMPILE))
def test_triton_compiles_for_a_gpu(student_files, case):
    """The kernel compiles for a real GPU with the tiles the wrapper picks there: ahead of time, no GPU needed.

    The wrapper runs in a fresh process in the sandbox (``autograder/sandboxed/triton_aot.py``):
    Triton in GPU mode with a stand-in driver for the target, every launch turned into
    a compile-only ``warmup``. The launches it reports are then compiled again by the
    grader from the kernels cut out of the file (``autograder/kernel_source.py``), where
    none of the student's code runs: the report checked here is the grader's own.
    """
    capability, dtype, shape, causal = GPU_COMPILE[case]
    q, k, v = (randn(*shape, dtype=dtype, seed=60 + i) for i in range(3))
    module = student_files["flash_triton"]
    report = module.triton_flash_attention.compile_for_gpu(capability, q, k, v, causal)
    where = f"compiling triton_flash_attention for the {CARD[capability]} (sm_{capability}), {case}"
    if report.get("stage") == "skipped":
        pytest.skip("no GPU compile check in-process (otter, nbgrader)")
    if not report.get("ok"):
        stage = str(report.get("stage"))
        raise CheckFailed(
            f"{where}: {report.get('error')}\nHint: {COMPILE_HINTS.get(stage, 'see the handout, section 5')}"
        )
    kernels = report.get("kernels")
    if not isinstance(kernels, list) or not kernels:
        raise CheckFailed(f"{where}: no kernel was compiled\nHint: {COMPILE_HINTS['none']}")
    for kernel in kernels:
        shared = kernel.get("shared") if isinstance(kernel, dict) else None
        if not isinstance(shared, int) or shared <= 0:
            raise CheckFailed(f"{where}: the compile report makes no sense ({kernel!r})")
        if shared > SHARED_MEMORY_PER_BLOCK[capability]:
            raise CheckFailed(
                f"{where}: {kernel.get('name')} needs {shared // 1024} KB of shared memory per block, over the "
                f"{SHARED_MEMORY_PER_BLOCK[capability] // 1024} KB the {CARD[capability]} allows\n"
                "Hint: smaller tiles (BLOCK_M x BLOCK_N) or fewer pipeline stages (num_stages)"
            )
