"""cache_bytes_per_token counts H query heads instead of the Hkv heads the cache holds."""


def cache_bytes_per_token(model):
    attn = model.blocks[0].attn
    return 2 * len(model.blocks) * attn.n_heads * attn.d_head * model.token_embedding.weight.element_size()
