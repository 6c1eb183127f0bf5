"""Temperature applied the wrong way: p_i ∝ n_i ** T."""

REPLACE = [
    (
        "weights = torch.tensor(sizes, dtype=torch.float64) ** (1.0 / temperature)",
        "weights = torch.tensor(sizes, dtype=torch.float64) ** temperature",
    )
]
