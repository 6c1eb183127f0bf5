"""Divides the Luong scores by sqrt(d): week 01's scaled dot product, not Luong's."""

REPLACE = [
    (
        "return (keys @ projected[:, :, None])[..., 0]  # (B, S, Hk) x (B, Hk, 1) -> (B, S)",
        "return (keys @ projected[:, :, None])[..., 0] / keys.shape[-1] ** 0.5",
    )
]
