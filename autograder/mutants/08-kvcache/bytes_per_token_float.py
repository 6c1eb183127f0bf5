"""cache_bytes_per_token uses torch.finfo(dtype).bits / 8: the right number, but a float."""


def cache_bytes_per_token(model):
    attn = model.blocks[0].attn
    bytes_per_value = torch.finfo(model.token_embedding.weight.dtype).bits / 8
    return 2 * len(model.blocks) * attn.n_kv_heads * attn.d_head * bytes_per_value
