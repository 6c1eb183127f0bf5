"""The pasted attention takes the queries from k_proj and the keys from q_proj."""


def _forward(self, x, context=None, mask=None):
    source = x if context is None else context
    q = split_heads(self.k_proj(x), self.n_heads)
    k = split_heads(self.q_proj(source), self.n_kv_heads)
    v = split_heads(self.v_proj(source), self.n_kv_heads)
    n_rep = self.n_heads // self.n_kv_heads
    out, weights = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)
    return self.out_proj(merge_heads(out)), weights


MultiHeadAttention.forward = _forward
