"""Detaches the value projection, so no gradient reaches v_proj or the context through V."""


def _forward(self, x, context=None, mask=None):
    source = x if context is None else context
    q = split_heads(self.q_proj(x), self.n_heads)
    k = split_heads(self.k_proj(source), self.n_kv_heads)
    v = split_heads(self.v_proj(source).detach(), self.n_kv_heads)
    n_rep = self.n_heads // self.n_kv_heads
    out, weights = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)
    return self.out_proj(merge_heads(out)), weights


MultiHeadAttention.forward = _forward
