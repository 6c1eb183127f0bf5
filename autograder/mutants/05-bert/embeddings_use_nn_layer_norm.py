"""Right values, but the embeddings use torch's nn.LayerNorm instead of week 04's LayerNorm (a forbidden built-in)."""

_init = BertEmbeddings.__init__


def _init_with_nn_layer_norm(self, vocab_size, d_model, max_len=512, type_vocab_size=2, eps=1e-12, dropout=0.1):
    _init(self, vocab_size, d_model, max_len, type_vocab_size, eps, dropout)
    self.norm = nn.LayerNorm(d_model, eps=eps)


BertEmbeddings.__init__ = _init_with_nn_layer_norm
