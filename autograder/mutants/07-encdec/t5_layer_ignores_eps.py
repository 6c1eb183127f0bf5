"""T5Layer builds its RMSNorms with the default eps (1e-6) whatever eps it is given."""

REPLACE = [
    ("self.self_attn_norm = RMSNorm(d_model, eps=eps)", "self.self_attn_norm = RMSNorm(d_model)"),
    ("self.cross_attn_norm = RMSNorm(d_model, eps=eps)", "self.cross_attn_norm = RMSNorm(d_model)"),
    ("self.ff_norm = RMSNorm(d_model, eps=eps)", "self.ff_norm = RMSNorm(d_model)"),
]
