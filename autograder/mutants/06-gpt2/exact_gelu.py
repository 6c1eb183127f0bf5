"""The blocks use the exact GELU (activation="gelu") instead of GPT-2's tanh approximation ("gelu_new")."""

_init = GPT.__init__


def _init_exact_gelu(self, vocab_size, max_len, d_model, n_heads, n_layers, d_ff=None, dropout=0.0, eps=1e-5):
    _init(self, vocab_size, max_len, d_model, n_heads, n_layers, d_ff, dropout, eps)
    for block in self.blocks:
        block.ff.activation = "gelu"


GPT.__init__ = _init_exact_gelu
