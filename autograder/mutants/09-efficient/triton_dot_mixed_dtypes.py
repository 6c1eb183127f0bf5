# target: flash_triton.py
"""The Triton kernel multiplies the float32 probabilities by the fp16/bf16 values tile (no p.to(v.dtype)):
the interpreter, which upcasts every tile, runs it; a GPU compiler rejects it."""


@triton.jit
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
        acc = acc * alpha[:, None] + tl.dot(p, v, input_precision="ieee")
        m_i = m_new
    out = acc / l_i[:, None]
    o_ptrs = Out + batch * stride_ob + head * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
    tl.store(Lse + pid_bh * seq_q + offs_m, m_i + tl.log(l_i), mask=row_ok)
