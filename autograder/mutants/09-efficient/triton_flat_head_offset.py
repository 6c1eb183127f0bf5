# target: flash_triton.py
"""The Triton kernel finds its (batch, head) slice as pid_bh * stride_h, which only holds for contiguous (B, H, T, D) inputs."""

REPLACE = [
    (
        "q_ptrs = Q + batch * stride_qb + head * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd",
        "q_ptrs = Q + pid_bh * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd",
    ),
    ("k_base = K + batch * stride_kb + head * stride_kh", "k_base = K + pid_bh * stride_kh"),
    ("v_base = V + batch * stride_vb + head * stride_vh", "v_base = V + pid_bh * stride_vh"),
    (
        "o_ptrs = Out + batch * stride_ob + head * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od",
        "o_ptrs = Out + pid_bh * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od",
    ),
]
