"""top_k_filter removes logits <= the k-th largest instead of < it: k - 1 survive (none for k = 1)."""


def top_k_filter(logits, k):
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    kth_largest = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits <= kth_largest, float("-inf"))
