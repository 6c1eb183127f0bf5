"""FlashAttention.backward returns the gradients in the wrong order: (dq, dv, dk) instead of (dq, dk, dv)."""


def _backward(ctx, grad_out):
    q, k, v, out, lse = ctx.saved_tensors
    causal, block_q, block_k = ctx.settings
    dq, dk, dv = flash_attention_backward(q, k, v, out, lse, grad_out, causal, block_q, block_k)
    return dq, dv, dk, None, None, None


FlashAttention.backward = staticmethod(_backward)
