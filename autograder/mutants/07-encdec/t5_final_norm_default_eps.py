"""T5Stack's final norm ignores eps (RMSNorm's default 1e-6); the layers' norms get it."""

REPLACE = [
    (
        "self.final_norm = RMSNorm(d_model, eps=eps)",
        "self.final_norm = RMSNorm(d_model)",
    ),
]
