"""The blocks are built post-norm (norm_first=False), as in BERT, instead of GPT-2's pre-norm."""

_init = GPT.__init__


def _init_post_norm(self, vocab_size, max_len, d_model, n_heads, n_layers, d_ff=None, dropout=0.0, eps=1e-5):
    _init(self, vocab_size, max_len, d_model, n_heads, n_layers, d_ff, dropout, eps)
    for block in self.blocks:
        block.norm_first = False


GPT.__init__ = _init_post_norm
