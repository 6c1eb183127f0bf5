"""seq2seq_loss scores the padded labels as the pad token."""

REPLACE = [
    (
        "loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)",
        "loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten().clamp(min=pad_token_id))",
    )
]
