# target: flash_triton.py
"""On a GPU the wrapper launches 256 x 256 tiles with 4 pipeline stages: the K and V tiles of every stage
do not fit in the shared memory of one block (the interpreter has no such limit)."""


def triton_flash_attention(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = False, block_m: int | None = None, block_n: int | None = None
) -> tuple[Tensor, Tensor]:
    """Attention ``softmax(q k^T / sqrt(D)) v`` with the Triton kernel, on the tensors' device.

    Args:
        q: ``(B, H, Tq, D)``; k, v: ``(B, H, Tk, D)``; float32, float16 or bfloat16, D in 16..128.
            On a GPU they must be CUDA tensors; in the interpreter, CPU tensors.
        causal: mask key ``j > i`` for query ``i`` (top-left aligned, like SDPA's ``is_causal``).
        block_m, block_n: tile sizes (powers of two, at least 16); None picks 128 x 64 (fp16, bf16) or 64 x 64
            (fp32) on a GPU, 16 x 16 in the interpreter.

    Returns:
        ``(out, lse)``: ``(B, H, Tq, D)`` in q's dtype, and the natural-log log-sum-exp of each row's scaled
        scores ``(B, H, Tq)`` in float32.
    """
    batch, heads, seq_q, head_dim = q.shape
    seq_k = k.shape[2]
    half = q.dtype in (torch.float16, torch.bfloat16)
    block_m = block_m or (16 if INTERPRET else 256)
    block_n = block_n or (16 if INTERPRET else 256)
    launch = {} if INTERPRET else {"num_warps": 8 if head_dim > 64 else 4, "num_stages": 4}
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
