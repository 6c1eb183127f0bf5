"""GQA without repeat_kv: 5-D scores (B, Hkv, n_rep, Tq, Tk), the mask given a group dim by mask[:, :, None].

Right for masks with one head dim of 1 (padding, causal), wrong (a broadcast error) for a per-head mask.
"""


def _forward(self, x, context=None, mask=None):
    source = x if context is None else context
    batch, q_len, _ = x.shape
    n_rep = self.n_heads // self.n_kv_heads
    q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, Tq, Dh)
    k = split_heads(self.k_proj(source), self.n_kv_heads)[:, :, None]  # (B, Hkv, 1, Tk, Dh)
    v = split_heads(self.v_proj(source), self.n_kv_heads)[:, :, None]
    q = q.reshape(batch, self.n_kv_heads, n_rep, q_len, self.d_head)
    if mask is not None and mask.dim() == 4:
        mask = mask[:, :, None]
    out, weights = attention(q, k, v, mask)  # (B, Hkv, n_rep, Tq, Dh), (B, Hkv, n_rep, Tq, Tk)
    out = out.reshape(batch, self.n_heads, q_len, self.d_head)
    weights = weights.reshape(batch, self.n_heads, q_len, -1)
    return self.out_proj(merge_heads(out)), weights


MultiHeadAttention.forward = _forward
