"""FlashAttention.backward drops the saved tile sizes and runs the backward pass with the default 16 x 16 tiles."""

REPLACE = [
    (
        "dq, dk, dv = flash_attention_backward(q, k, v, out, lse, grad_out, causal, block_q, block_k)",
        "dq, dk, dv = flash_attention_backward(q, k, v, out, lse, grad_out, causal)",
    ),
]
