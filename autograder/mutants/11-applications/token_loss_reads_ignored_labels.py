"""The token-classification loss reads -100 as class 0: ignored positions are in the loss."""

REPLACE = [
    (
        "return logits, F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)",
        "return logits, F.cross_entropy(logits.flatten(0, 1), labels.flatten().clamp(min=0))",
    )
]
