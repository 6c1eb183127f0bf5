"""The model masks the padding keys only: every position also attends to the positions after it."""


def _forward(self, input_ids, attention_mask=None):
    batch, length = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, dtype=torch.long)
    x = self.drop(self.token_embedding(input_ids) + self.position_embedding(position_ids(attention_mask)))
    mask = attention_mask.bool()[:, None, None, :]
    x = self.run_blocks(x, mask)
    return self.norm_f(x) @ self.token_embedding.weight.T


GPT.forward = _forward
