"""The T5 attention divides its scores by sqrt(d_head) like the original Transformer; T5 does not."""

_original_t5_init = T5Attention.__init__


def _init(self, d_model, n_heads, d_head, scale=False):
    _original_t5_init(self, d_model, n_heads, d_head, scale=True)


T5Attention.__init__ = _init
