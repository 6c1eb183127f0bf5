"""top_k_filter keeps exactly the k indices torch.topk returns, dropping logits tied with the k-th largest."""


def top_k_filter(logits, k):
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    index = torch.topk(logits, min(k, logits.size(-1)), dim=-1).indices
    return torch.full_like(logits, float("-inf")).scatter(-1, index, logits.gather(-1, index))
