"""The GPT classifier pools the last column, a pad token in right-padded rows."""

REPLACE = [
    (
        "pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, D)",
        "pooled = hidden[:, -1]  # (B, D)",
    )
]
