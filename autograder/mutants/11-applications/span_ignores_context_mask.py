"""best_span lets answers start or end in the question or on special tokens."""

REPLACE = [
    (
        "allowed = allowed & context_mask[:, :, None] & context_mask[:, None, :]  # (B, T, T)",
        "allowed = allowed & context_mask[:, :, None]  # (B, T, T)",
    )
]
