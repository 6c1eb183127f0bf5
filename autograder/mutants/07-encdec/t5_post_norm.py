"""The T5 layer is post-norm (norm after the residual add); T5 is pre-norm."""


def _forward(self, x, mask=None, position_bias=None, memory=None, memory_mask=None):
    x = self.self_attn_norm(x + self.dropout(self.self_attn(x, mask=mask, position_bias=position_bias)[0]))
    if self.is_decoder:
        x = self.cross_attn_norm(x + self.dropout(self.cross_attn(x, context=memory, mask=memory_mask)[0]))
    return self.ff_norm(x + self.dropout(self.ff(x)))


T5Layer.forward = _forward
