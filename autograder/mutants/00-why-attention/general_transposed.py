"""Luong general with W transposed: q^T W^T k."""

REPLACE = [
    (
        'projected = query @ self.weight if self.kind == "general" else query  # (B, Hk)',
        'projected = query @ self.weight.T if self.kind == "general" else query  # (B, Hk)',
    )
]
