"""The backward pass forgets the 1/sqrt(D) of the scores in dQ and dK."""


def flash_attention_backward(q, k, v, out, lse, grad_out, causal=False, block_q=16, block_k=16):
    seq_q, seq_k = q.size(-2), k.size(-2)
    scale = 1.0 / math.sqrt(q.size(-1))
    delta = (grad_out * out).sum(dim=-1)
    dk = torch.zeros_like(k)
    dv = torch.zeros_like(v)
    dqs = []
    for i0 in range(0, seq_q, block_q):
        i1 = min(i0 + block_q, seq_q)
        q_tile, do_tile = q[..., i0:i1, :], grad_out[..., i0:i1, :]
        lse_tile, delta_tile = lse[..., i0:i1, None], delta[..., i0:i1, None]
        dq_tile = torch.zeros_like(q_tile)
        rows = torch.arange(i0, i1, device=q.device)
        k_end = min(seq_k, i1) if causal else seq_k
        for j0 in range(0, k_end, block_k):
            j1 = min(j0 + block_k, seq_k)
            k_tile, v_tile = k[..., j0:j1, :], v[..., j0:j1, :]
            s = q_tile @ k_tile.transpose(-2, -1) * scale
            if causal:
                cols = torch.arange(j0, j1, device=q.device)
                s = s.masked_fill(cols[None, :] > rows[:, None], float("-inf"))
            p = torch.exp(s - lse_tile)
            dv[..., j0:j1, :] += p.transpose(-2, -1) @ do_tile
            dp = do_tile @ v_tile.transpose(-2, -1)
            ds = p * (dp - delta_tile)
            dq_tile += ds @ k_tile
            dk[..., j0:j1, :] += ds.transpose(-2, -1) @ q_tile
        dqs.append(dq_tile)
    return torch.cat(dqs, dim=-2), dk, dv
