"""KVCache.bytes and cache_bytes_per_token count one layer only."""


def _bytes(self):
    return sum(t.numel() * t.element_size() for t in (self.keys[0], self.values[0]) if t is not None)


KVCache.bytes = _bytes


def cache_bytes_per_token(model):
    attn = model.blocks[0].attn
    return 2 * attn.n_kv_heads * attn.d_head * model.token_embedding.weight.element_size()
