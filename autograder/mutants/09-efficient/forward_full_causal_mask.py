"""The causal mask is built once for all (Tq, Tk) positions and sliced per tile: an O(T^2) tensor."""


def flash_attention_forward(q, k, v, causal=False, block_q=16, block_k=16):
    seq_q, seq_k = q.size(-2), k.size(-2)
    scale = 1.0 / math.sqrt(q.size(-1))
    outs, lses = [], []
    allowed = torch.ones(seq_q, seq_k, dtype=torch.bool, device=q.device).tril()
    for i0 in range(0, seq_q, block_q):
        i1 = min(i0 + block_q, seq_q)
        q_tile = q[..., i0:i1, :]
        m = torch.full(q_tile.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)
        l = torch.zeros_like(m)
        acc = torch.zeros(*q_tile.shape[:-1], v.size(-1), dtype=q.dtype, device=q.device)
        rows = torch.arange(i0, i1, device=q.device)
        k_end = min(seq_k, i1) if causal else seq_k
        for j0 in range(0, k_end, block_k):
            j1 = min(j0 + block_k, seq_k)
            s = q_tile @ k[..., j0:j1, :].transpose(-2, -1) * scale
            if causal:
                cols = torch.arange(j0, j1, device=q.device)
                s = s.masked_fill(~allowed[i0:i1, j0:j1], float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1))
            m_safe = m_new.masked_fill(m_new == float("-inf"), 0.0)
            alpha = torch.exp(m - m_safe)
            p = torch.exp(s - m_safe[..., None])
            l = alpha * l + p.sum(dim=-1)
            acc = alpha[..., None] * acc + p @ v[..., j0:j1, :]
            m = m_new
        outs.append(acc / l[..., None])
        lses.append(m + torch.log(l))
    return torch.cat(outs, dim=-2), torch.cat(lses, dim=-1)
