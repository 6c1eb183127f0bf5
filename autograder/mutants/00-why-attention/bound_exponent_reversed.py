"""sigma^t instead of sigma^(T-t): the decay runs the wrong way along the sequence."""

REPLACE = [
    (
        "exponents = torch.arange(length, -1, -1, dtype=weight_hh.dtype)  # T, T-1, …, 0",
        "exponents = torch.arange(0, length + 1, dtype=weight_hh.dtype)",
    )
]
