"""The backward pass recomputes the whole attention with autograd: right gradients, a full (Tq, Tk) matrix."""


def flash_attention_backward(q, k, v, out, lse, grad_out, causal=False, block_q=16, block_k=16):
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        recomputed, _ = naive_attention(*leaves, causal)
        return torch.autograd.grad(recomputed, leaves, grad_out)
