"""Positions Tc, Tc+1, ... for the new tokens: right without padding, wrong for left-padded rows."""


def _forward(self, input_ids, attention_mask=None, cache=None):
    batch, new = input_ids.shape
    past = 0 if cache is None else cache.length
    if attention_mask is None:
        attention_mask = torch.ones(batch, past + new, dtype=torch.long)
    positions = (
        position_ids(attention_mask)[:, past:] if past == 0 else torch.arange(past, past + new).expand(batch, new)
    )
    x = self.drop(self.token_embedding(input_ids) + self.position_embedding(positions))
    mask = causal_mask(new, past + new, attention_mask)
    for layer, block in enumerate(self.blocks):
        attend = functools.partial(cached_attention, block.attn, mask=mask, cache=cache, layer=layer)
        x = block.residual(x, attend, block.norm1, block.dropout1)
        x = block.residual(x, block.ff, block.norm2, block.dropout2)
    return self.norm_f(x) @ self.token_embedding.weight.T


GPT.forward = _forward
