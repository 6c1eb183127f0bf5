"""The blocks are built without GPT's dropout (TransformerBlock's default 0.0): only `drop` on the embeddings drops."""

REPLACE = [
    (
        'TransformerBlock(d_model, n_heads, hidden, dropout, norm_first=True, activation="gelu_tanh", eps=eps)',
        'TransformerBlock(d_model, n_heads, hidden, norm_first=True, activation="gelu_tanh", eps=eps)',
    ),
]
