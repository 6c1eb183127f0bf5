"""An untied LM head: its own nn.Linear(D, V), initialised as a copy of the embedding (an extra state-dict entry)."""

_init = GPT.__init__


def _init_with_head(self, vocab_size, max_len, d_model, n_heads, n_layers, d_ff=None, dropout=0.0, eps=1e-5):
    _init(self, vocab_size, max_len, d_model, n_heads, n_layers, d_ff, dropout, eps)
    self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
    self.lm_head.weight.data.copy_(self.token_embedding.weight.data)


def _forward(self, input_ids, attention_mask=None):
    batch, length = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, dtype=torch.long)
    x = self.drop(self.token_embedding(input_ids) + self.position_embedding(position_ids(attention_mask)))
    mask = causal_mask(length, length, attention_mask)
    x = self.run_blocks(x, mask)
    return self.lm_head(self.norm_f(x))


GPT.__init__ = _init_with_head
GPT.forward = _forward
