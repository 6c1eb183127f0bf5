"""With scale=True, T5Attention divides by sqrt(d_model / n_heads) instead of sqrt(d_head)."""

REPLACE = [
    (
        "logits = logits / math.sqrt(self.d_head)",
        "logits = logits / math.sqrt(self.q_proj.in_features // self.n_heads)",
    ),
]
