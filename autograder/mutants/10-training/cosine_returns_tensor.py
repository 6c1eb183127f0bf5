"""cosine_with_warmup computes the decay with torch.cos and returns a 0-d tensor instead of a float."""

REPLACE = [
    (
        "return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))",
        "return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + torch.cos(torch.tensor(math.pi * progress)))",
    ),
]
