"""Checks the head counts with assert (AssertionError) instead of raising ValueError."""

REPLACE = [
    (
        'raise ValueError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={n_heads}")',
        'raise AssertionError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={n_heads}")',
    )
]
