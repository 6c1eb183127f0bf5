"""The model numbers positions 0..T-1 in every row, ignoring the left padding (position_ids itself is right)."""


def _forward(self, input_ids, attention_mask=None):
    batch, length = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, dtype=torch.long)
    positions = torch.arange(length).expand(batch, length)
    x = self.drop(self.token_embedding(input_ids) + self.position_embedding(positions))
    mask = causal_mask(length, length, attention_mask)
    x = self.run_blocks(x, mask)
    return self.norm_f(x) @ self.token_embedding.weight.T


GPT.forward = _forward
