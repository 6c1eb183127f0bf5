"""The MLM head owns a separate (V, D) output matrix instead of using the word embeddings (no weight tying)."""

_init = MLMHead.__init__


def _init_untied(self, d_model, vocab_size, eps=1e-12):
    _init(self, d_model, vocab_size, eps)
    self.decoder = nn.Linear(d_model, vocab_size, bias=False)


def _forward(self, hidden, decoder_weight):
    return self.decoder(self.norm(gelu(self.transform(hidden)))) + self.bias


MLMHead.__init__ = _init_untied
MLMHead.forward = _forward
