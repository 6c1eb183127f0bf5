"""T5Attention stores the scale flag but never divides by sqrt(d_head), even with scale=True."""

REPLACE = [
    (
        "logits = logits / math.sqrt(self.d_head)",
        "pass",
    ),
]
