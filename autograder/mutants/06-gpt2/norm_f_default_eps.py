"""norm_f keeps LayerNorm's default eps (1e-5) instead of GPT's eps; the blocks get it."""

REPLACE = [("        self.norm_f = LayerNorm(d_model, eps=eps)", "        self.norm_f = LayerNorm(d_model)")]
