"""top_p_filter in Hugging Face's ascending form (remove while the cumulative mass is <= 1 - p) without its
min_tokens_to_keep: for a tiny p the rounded total mass falls below 1 - p and every token is removed."""


def top_p_filter(logits, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= 1 - p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))
