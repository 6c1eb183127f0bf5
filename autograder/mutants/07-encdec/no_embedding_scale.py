"""The embeddings are not multiplied by sqrt(d_model) before the positions are added."""


def _embed(self, tokens, table):
    vectors = table(tokens)
    positions = torch.arange(tokens.shape[1], dtype=vectors.dtype)
    return self.dropout(vectors + sinusoidal_encoding(positions, self.d_model))


EncoderDecoder.embed = _embed
