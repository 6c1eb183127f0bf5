"""top_p_filter accumulates the probabilities in vocabulary order, without sorting them first."""


def top_p_filter(logits, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if p == 1.0:
        return logits
    probs = torch.softmax(logits, dim=-1)
    drop = probs.cumsum(dim=-1) - probs >= p
    drop[..., 0] = False
    return logits.masked_fill(drop, float("-inf"))
