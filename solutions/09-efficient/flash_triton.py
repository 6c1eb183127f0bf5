"""Week 09, part 2: FlashAttention's forward pass as a Triton kernel.

Shapes use these letters:

* ``B`` batch, ``H`` heads, ``Tq`` query positions, ``Tk`` key/value positions
* ``D`` head size (16 to 128), ``BLOCK_M`` query rows per program, ``BLOCK_N`` keys per inner step

One *program* (a Triton thread block) computes ``BLOCK_M`` rows of the output for
one ``(batch, head)`` pair: it loads its query tile once, then streams every key
and value tile through on-chip memory with the online softmax (running max ``m``,
running sum ``l``, an fp32 accumulator), and writes its output tile and the
per-row log-sum-exp once. Nothing of size ``Tq x Tk`` ever exists.

Without a GPU the kernel runs in Triton's interpreter (``TRITON_INTERPRET=1``,
set below before ``triton`` is imported): the same code, executed with NumPy on
the CPU. It is slow (keep shapes tiny) and computes bfloat16 wrongly, which is
why every load is upcast to float32 there. The backward pass in Triton is
optional this week (see the handout); ``flash.py`` has the graded one.

Rules: no ``tl.make_block_ptr`` / tensor descriptors (pointer arithmetic and
masks only: block pointers are gone from recent Triton), no PyTorch attention
(``F.scaled_dot_product_attention``). ``@triton.autotune`` is optional on a GPU;
in the interpreter pin one configuration (every configuration would run).
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before importing triton: the CPU runs kernels in the interpreter

import triton  # noqa: E402  (the environment variable must be set first)
import triton.language as tl  # noqa: E402

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
if INTERPRET and type(tl.sum).__name__ != "InterpretedFunction":
    raise ImportError(
        "triton was imported before TRITON_INTERPRET=1 was set, so its kernels cannot run on this CPU: "
        "import flash_triton before anything that imports triton, or start Python with TRITON_INTERPRET=1"
    )


@triton.jit  # type: ignore[untyped-decorator]
def _flash_fwd_kernel(  # type: ignore[no-untyped-def]
    Q,
    K,
    V,
    Out,
    Lse,
    stride_qb,
    stride_qh,
    stride_qm,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_ob,
    stride_oh,
    stride_om,
    stride_od,
    n_heads,
    seq_q,
    seq_k,
    head_dim,
    scale,
    CAUSAL: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """One program: rows ``[pid_m * BLOCK_M, (pid_m + 1) * BLOCK_M)`` of one (batch, head).

    Grid ``(cdiv(Tq, BLOCK_M), B * H)``. ``Lse`` is contiguous ``(B, H, Tq)`` float32.
    ``UPCAST``: convert loaded tiles to float32 (always in the interpreter).
    """
    # BEGIN SOLUTION: offsets for this program's rows, load the Q tile (masked), loop over K/V tiles with the online softmax, store O and the LSE (masked).
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    batch = pid_bh // n_heads
    head = pid_bh % n_heads
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query rows
    offs_n = tl.arange(0, BLOCK_N)  # (BLOCK_N,) key columns within a tile
    offs_d = tl.arange(0, BLOCK_D)  # (BLOCK_D,) features (BLOCK_D >= D, a power of two)
    row_ok = offs_m < seq_q
    d_ok = offs_d < head_dim
    q_ptrs = Q + batch * stride_qb + head * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    k_base = K + batch * stride_kb + head * stride_kh
    v_base = V + batch * stride_vb + head * stride_vh
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)  # running max of the scaled scores
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)  # running sum of exp(score - m_i)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)  # running sum of exp(score - m_i) * v
    end_n = seq_k
    if CAUSAL:  # top-left aligned like SDPA: row i sees keys 0..i, so later tiles are all masked
        end_n = tl.minimum(seq_k, (pid_m + 1) * BLOCK_M)
    for start_n in range(0, end_n, BLOCK_N):
        cols = start_n + offs_n
        col_ok = cols < seq_k
        k = tl.load(
            k_base + cols[:, None] * stride_kn + offs_d[None, :] * stride_kd,
            mask=col_ok[:, None] & d_ok[None, :],
            other=0.0,
        )
        v = tl.load(
            v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
            mask=col_ok[:, None] & d_ok[None, :],
            other=0.0,
        )
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale  # (BLOCK_M, BLOCK_N), fp32
        valid = col_ok[None, :]
        if CAUSAL:
            valid = valid & (cols[None, :] <= offs_m[:, None])
        s = tl.where(valid, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp(m_i - m_new)  # rescales what was summed under the old max
        p = tl.exp(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
        m_i = m_new
    out = acc / l_i[:, None]
    o_ptrs = Out + batch * stride_ob + head * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
    tl.store(Lse + pid_bh * seq_q + offs_m, m_i + tl.log(l_i), mask=row_ok)
    # END SOLUTION


def triton_flash_attention(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = False, block_m: int | None = None, block_n: int | None = None
) -> tuple[Tensor, Tensor]:
    """Attention ``softmax(q k^T / sqrt(D)) v`` with the Triton kernel, on the tensors' device.

    Args:
        q: ``(B, H, Tq, D)``; k, v: ``(B, H, Tk, D)``; float32, float16 or bfloat16, D in 16..128
            (any size: 24 or 40 too, with ``BLOCK_D`` the next power of two and the features past D masked).
            On a GPU they must be CUDA tensors; in the interpreter, CPU tensors.
        causal: mask key ``j > i`` for query ``i`` (top-left aligned, like SDPA's ``is_causal``).
        block_m, block_n: tile sizes (powers of two, at least 16); None picks 128 x 64 (fp16, bf16) or 64 x 64
            (fp32) on a GPU, 16 x 16 in the interpreter.

    Returns:
        ``(out, lse)``: ``(B, H, Tq, D)`` in q's dtype, and the natural-log log-sum-exp of each row's scaled
        scores ``(B, H, Tq)`` in float32.
    """
    # BEGIN SOLUTION: allocate out (q's dtype) and lse (float32), pick tile sizes, launch a (cdiv(Tq, BLOCK_M), B*H) grid.
    batch, heads, seq_q, head_dim = q.shape
    seq_k = k.shape[2]
    half = q.dtype in (torch.float16, torch.bfloat16)
    block_m = block_m or (16 if INTERPRET else 128 if half else 64)
    block_n = block_n or (16 if INTERPRET else 64)
    launch = {} if INTERPRET else {"num_warps": 8 if head_dim > 64 else 4, "num_stages": 3 if half else 2}
    out = torch.empty_like(q)
    lse = torch.empty(batch, heads, seq_q, device=q.device, dtype=torch.float32)
    grid = (triton.cdiv(seq_q, block_m), batch * heads)
    _flash_fwd_kernel[grid](
        q,
        k,
        v,
        out,
        lse,
        *q.stride(),
        *k.stride(),
        *v.stride(),
        *out.stride(),
        heads,
        seq_q,
        seq_k,
        head_dim,
        1.0 / math.sqrt(head_dim),
        CAUSAL=causal,
        UPCAST=INTERPRET or q.dtype == torch.float32,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
        **launch,
    )
    return out, lse
    # END SOLUTION


def run_triton(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = False, block_m: int | None = None, block_n: int | None = None
) -> tuple[Tensor, Tensor]:
    """What the grader calls: CPU tensors in, CPU tensors out (given, do not change).

    Moves the inputs to the GPU when there is one (else they stay on the CPU for
    the interpreter), runs ``triton_flash_attention`` and brings the results back.
    """
    device = "cpu" if INTERPRET else "cuda"
    out, lse = triton_flash_attention(q.to(device), k.to(device), v.to(device), causal, block_m, block_n)
    return out.cpu(), lse.cpu()
