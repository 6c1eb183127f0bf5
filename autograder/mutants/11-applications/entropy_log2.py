"""attention_entropy in bits (log base 2) instead of nats."""

REPLACE = [
    (
        "row_entropy = -torch.xlogy(attn, attn).sum(dim=-1)  # (B, H, T)",
        "row_entropy = -torch.xlogy(attn, attn).sum(dim=-1) / math.log(2)  # (B, H, T)",
    )
]
