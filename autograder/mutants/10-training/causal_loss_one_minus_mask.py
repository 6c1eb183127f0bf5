"""causal_lm_loss finds the padding as 1 - attention_mask, which fails for a bool mask (True / False)."""

REPLACE = [
    (
        "labels = labels.masked_fill(attention_mask[:, 1:] == 0, IGNORE_INDEX)",
        "labels = labels.masked_fill((1 - attention_mask[:, 1:]).bool(), IGNORE_INDEX)",
    ),
]
