"""The cross-attention is masked causally too (query i sees memory positions j <= i only)."""


def _forward(self, x, memory, tgt_mask=None, memory_mask=None):
    triangle = torch.ones(x.shape[1], memory.shape[1], dtype=torch.bool).tril()
    cross_mask = triangle if memory_mask is None else memory_mask & triangle
    x = self.norm1(x + self.dropout1(self.self_attn(x, mask=tgt_mask)[0]))
    x = self.norm2(x + self.dropout2(self.cross_attn(x, context=memory, mask=cross_mask)[0]))
    return self.norm3(x + self.dropout3(self.ff(x)))


DecoderLayer.forward = _forward
