"""The decoder layer is pre-norm, where the original Transformer (and nn.TransformerDecoderLayer) is post-norm."""


def _forward(self, x, memory, tgt_mask=None, memory_mask=None):
    x = x + self.dropout1(self.self_attn(self.norm1(x), mask=tgt_mask)[0])
    x = x + self.dropout2(self.cross_attn(self.norm2(x), context=memory, mask=memory_mask)[0])
    return x + self.dropout3(self.ff(self.norm3(x)))


DecoderLayer.forward = _forward
