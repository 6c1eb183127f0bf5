"""mean_pool sums the real positions but divides by T, counting the padding."""

REPLACE = [
    (
        "return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)",
        "return (hidden * weights).sum(dim=1) / hidden.shape[1]",
    )
]
