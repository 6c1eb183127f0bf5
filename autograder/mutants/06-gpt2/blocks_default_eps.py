"""The blocks' LayerNorms keep TransformerBlock's default eps (1e-5) instead of GPT's eps; norm_f gets it."""

REPLACE = [
    (
        'TransformerBlock(d_model, n_heads, hidden, dropout, norm_first=True, activation="gelu_tanh", eps=eps)',
        'TransformerBlock(d_model, n_heads, hidden, dropout, norm_first=True, activation="gelu_tanh")',
    ),
]
