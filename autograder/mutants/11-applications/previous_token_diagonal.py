"""previous_token_score reads the diagonal (the token itself), not the one before."""

REPLACE = [
    (
        "return attn.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))",
        "return attn.diagonal(offset=0, dim1=-2, dim2=-1).mean(dim=(0, -1))",
    )
]
