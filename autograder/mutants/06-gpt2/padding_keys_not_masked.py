"""causal_mask ignores attention_mask: real tokens also attend to the left padding."""


def causal_mask(query_length, key_length, attention_mask=None):
    return torch.ones(query_length, key_length, dtype=torch.bool).tril(diagonal=key_length - query_length)[None, None]
