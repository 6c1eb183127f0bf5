"""Always attends to x itself, ignoring the context (no cross-attention)."""

_forward = MultiHeadAttention.forward


def _self_only(self, x, context=None, mask=None):
    return _forward(self, x, None, mask if context is None else None)


MultiHeadAttention.forward = _self_only
