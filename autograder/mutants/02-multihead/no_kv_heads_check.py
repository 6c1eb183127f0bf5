"""Never checks that n_kv_heads divides n_heads (n_rep is silently rounded down)."""

REPLACE = [
    (
        'raise ValueError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={n_heads}")',
        "pass",
    )
]
