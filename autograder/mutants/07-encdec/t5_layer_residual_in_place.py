"""T5Layer adds its residual branches in place (x += ...), which changes the tensor it was given."""


def _forward(self, x, mask=None, position_bias=None, memory=None, memory_mask=None):
    x += self.dropout(self.self_attn(self.self_attn_norm(x), mask=mask, position_bias=position_bias)[0])
    if self.is_decoder:
        x = x + self.dropout(self.cross_attn(self.cross_attn_norm(x), context=memory, mask=memory_mask)[0])
    return x + self.dropout(self.ff(self.ff_norm(x)))


T5Layer.forward = _forward
