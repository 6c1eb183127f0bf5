"""T5Attention fills masked scores with -inf but has no guard: a fully masked row (an empty source) gives NaN."""

REPLACE = [
    (
        "probabilities = torch.softmax(logits, dim=-1).nan_to_num(0.0)",
        "probabilities = torch.softmax(logits, dim=-1)",
    ),
]
