"""induction_score reads key i - P (the earlier copy of the same token) instead of i - P + 1."""

REPLACE = [
    (
        "diagonal = attn.diagonal(offset=-(period - 1), dim1=-2, dim2=-1)  # query i = j + P - 1, key j\n    return diagonal[..., 1:].mean(dim=(0, -1))",
        "diagonal = attn.diagonal(offset=-period, dim1=-2, dim2=-1)\n    return diagonal.mean(dim=(0, -1))",
    )
]
