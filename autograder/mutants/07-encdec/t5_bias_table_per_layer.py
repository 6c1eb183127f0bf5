"""Every T5 layer owns and computes its own relative position table instead of one shared table per stack."""

_original_layer_init = T5Layer.__init__


def _layer_init(self, d_model, n_heads, d_head, d_ff, dropout=0.0, eps=1e-6, is_decoder=False):
    _original_layer_init(self, d_model, n_heads, d_head, d_ff, dropout, eps, is_decoder)
    self.relative_bias = RelativePositionBias(n_heads, 16, 20, bidirectional=not is_decoder)


def _stack_forward(self, x, mask=None, memory=None, memory_mask=None):
    h = self.dropout(x)
    for layer in self.layers:
        bias = layer.relative_bias(x.shape[1], x.shape[1])
        h = layer(h, mask=mask, position_bias=bias, memory=memory, memory_mask=memory_mask)
    return self.dropout(self.final_norm(h))


T5Layer.__init__ = _layer_init
T5Stack.forward = _stack_forward
