"""top_p_filter keeps a token only while the mass INCLUDING it is <= p, dropping the token that crosses p."""


def top_p_filter(logits, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if p == 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    drop_sorted = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1) > p
    drop_sorted[..., 0] = False
    return logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
