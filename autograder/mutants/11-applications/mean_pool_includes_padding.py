"""mean_pool ignores the mask: the padding's hidden states are averaged in."""

REPLACE = [
    (
        "weights = (attention_mask != 0).to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)",
        "weights = torch.ones_like(attention_mask, dtype=hidden.dtype).unsqueeze(-1)",
    )
]
