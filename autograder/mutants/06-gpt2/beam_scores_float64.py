"""beam_search keeps its running sums in float64 and never casts back: a float32 model gets float64 scores."""

REPLACE = [
    (
        "        candidates = (totals.to(log_probs.dtype)[:, None] + log_probs).flatten()  # (k * V,), beam-major",
        "        candidates = (totals[:, None] + log_probs).flatten()  # float64 whatever the logits' dtype",
    ),
]
