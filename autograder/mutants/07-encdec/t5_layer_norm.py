"""T5's norms are week 04's LayerNorm (centring, with a bias) where T5 uses RMSNorm (T5LayerNorm): no centring, no bias."""

REPLACE = [
    ("self.self_attn_norm = RMSNorm(d_model, eps=eps)", "self.self_attn_norm = LayerNorm(d_model, eps=eps)"),
    ("self.cross_attn_norm = RMSNorm(d_model, eps=eps)", "self.cross_attn_norm = LayerNorm(d_model, eps=eps)"),
    ("self.ff_norm = RMSNorm(d_model, eps=eps)", "self.ff_norm = LayerNorm(d_model, eps=eps)"),
    ("self.final_norm = RMSNorm(d_model, eps=eps)", "self.final_norm = LayerNorm(d_model, eps=eps)"),
]
