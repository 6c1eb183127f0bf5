"""causal_mask ignores Tk - Tq: a decode step's single query sees only the first key, the cache is hidden."""


def causal_mask(query_length, key_length, attention_mask=None):
    allowed = torch.ones(query_length, key_length, dtype=torch.bool).tril()[None, None]
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]
    return allowed
