"""The sinusoidal positions are never added: the model cannot tell word order."""


def _embed(self, tokens, table):
    return self.dropout(table(tokens) * math.sqrt(self.d_model))


EncoderDecoder.embed = _embed
