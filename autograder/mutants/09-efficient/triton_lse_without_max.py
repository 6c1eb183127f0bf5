# target: flash_triton.py
"""The Triton kernel stores log(l_i) as the LSE, forgetting the running max m_i."""

REPLACE = [
    (
        "tl.store(Lse + pid_bh * seq_q + offs_m, m_i + tl.log(l_i), mask=row_ok)",
        "tl.store(Lse + pid_bh * seq_q + offs_m, tl.log(l_i), mask=row_ok)",
    ),
]
