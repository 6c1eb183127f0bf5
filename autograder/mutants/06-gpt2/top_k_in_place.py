"""top_k_filter writes the -inf into the caller's logits (masked_fill_) and returns them."""


def top_k_filter(logits, k):
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    kth_largest = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill_(logits < kth_largest, float("-inf"))
