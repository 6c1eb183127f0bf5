"""The summed embeddings go through a hand-written dropout that zeroes elements but forgets the 1 / (1 - p) rescale."""


def _forward(self, input_ids, attention_mask=None):
    batch, length = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, dtype=torch.long)
    x = self.token_embedding(input_ids) + self.position_embedding(position_ids(attention_mask))
    if self.training:
        x = x * (torch.rand_like(x) >= self.drop.p)  # zeroed with probability p, survivors not divided by 1 - p
    mask = causal_mask(length, length, attention_mask)
    x = self.run_blocks(x, mask)
    return self.norm_f(x) @ self.token_embedding.weight.T


GPT.forward = _forward
