"""The embedding dropout is written inline, zeroing elements with probability p without dividing the rest by 1 - p."""


def _embed(self, tokens, table):
    vectors = table(tokens) * math.sqrt(self.d_model)
    positions = torch.arange(tokens.shape[1], dtype=vectors.dtype)
    embedded = vectors + sinusoidal_encoding(positions, self.d_model)
    if self.training and self.dropout.p > 0:
        embedded = embedded * (torch.rand_like(embedded) >= self.dropout.p)
    return embedded


EncoderDecoder.embed = _embed
