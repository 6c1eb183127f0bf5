"""DecoderLayer's attentions use 4 heads whatever n_heads is (the weights have the same shapes)."""

REPLACE = [
    ("self.self_attn = MultiHeadAttention(d_model, n_heads)", "self.self_attn = MultiHeadAttention(d_model, 4)"),
    ("self.cross_attn = MultiHeadAttention(d_model, n_heads)", "self.cross_attn = MultiHeadAttention(d_model, 4)"),
]
