"""The cross-attention takes its keys and values from the decoder's own states (a copy of the self-attention line)."""


def _forward(self, x, memory, tgt_mask=None, memory_mask=None):
    x = self.norm1(x + self.dropout1(self.self_attn(x, mask=tgt_mask)[0]))
    x = self.norm2(x + self.dropout2(self.cross_attn(x, context=x, mask=tgt_mask)[0]))
    return self.norm3(x + self.dropout3(self.ff(x)))


DecoderLayer.forward = _forward
