"""Uses the spectral radius (largest |eigenvalue|) instead of the largest singular value."""

REPLACE = [
    (
        "sigma = torch.linalg.matrix_norm(weight_hh, ord=2)",
        "sigma = torch.linalg.eigvals(weight_hh).abs().max().to(weight_hh.dtype)",
    )
]
