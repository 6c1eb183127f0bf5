"""The block uses nn.Dropout instead of the week's own Dropout (a forbidden built-in)."""

_init = TransformerBlock.__init__


def _init_with_nn_dropout(self, d_model, n_heads, d_ff, dropout=0.0, **kwargs):
    _init(self, d_model, n_heads, d_ff, dropout, **kwargs)
    self.dropout1 = nn.Dropout(dropout)
    self.dropout2 = nn.Dropout(dropout)


TransformerBlock.__init__ = _init_with_nn_dropout
