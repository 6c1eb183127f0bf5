"""The block ignores its `eps` argument: its norms always get 1e-5."""

_init = TransformerBlock.__init__


def _init_default_eps(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True, activation="relu", norm="layernorm", eps=1e-5):
    _init(self, d_model, n_heads, d_ff, dropout, norm_first, activation, norm)


TransformerBlock.__init__ = _init_default_eps
