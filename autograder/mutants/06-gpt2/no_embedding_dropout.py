"""The summed embeddings skip `drop`: no dropout between the embeddings and the first block."""


def _forward(self, input_ids, attention_mask=None):
    batch, length = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, dtype=torch.long)
    x = self.token_embedding(input_ids) + self.position_embedding(position_ids(attention_mask))
    mask = causal_mask(length, length, attention_mask)
    x = self.run_blocks(x, mask)
    return self.norm_f(x) @ self.token_embedding.weight.T


GPT.forward = _forward
