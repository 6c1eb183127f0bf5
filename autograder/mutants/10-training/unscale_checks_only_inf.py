"""unscale_ looks for inf only (torch.isinf): NaN gradients are not reported and the step is taken."""

REPLACE = [
    ("finite = finite and bool(torch.isfinite(g).all())", "finite = finite and not bool(torch.isinf(g).any())"),
]
