"""causal_mask uses tril() without the Tk - Tq shift: right for Tq == Tk, wrong for the last Tq of Tk positions."""


def causal_mask(query_length, key_length, attention_mask=None):
    allowed = torch.ones(query_length, key_length, dtype=torch.bool).tril()[None, None]
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]
    return allowed
