"""sliding_window_attention slices the reachable keys but forgets to mask those outside each query's own window."""


def sliding_window_attention(q, k, v, window, block=16):
    length = q.size(-2)
    scale = 1.0 / math.sqrt(q.size(-1))
    outs = []
    for i0 in range(0, length, block):
        i1 = min(i0 + block, length)
        j0, j1 = max(0, i0 - window), min(length, i1 + window)
        s = q[..., i0:i1, :] @ k[..., j0:j1, :].transpose(-2, -1) * scale
        outs.append(torch.softmax(s, dim=-1) @ v[..., j0:j1, :])
    return torch.cat(outs, dim=-2)
