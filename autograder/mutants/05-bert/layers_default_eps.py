"""The encoder's layers are built without eps=eps: their norms get the block's default 1e-5, not BERT's 1e-12."""

REPLACE = [
    (
        'TransformerBlock(d_model, n_heads, d_ff, dropout=dropout, norm_first=False, activation="gelu", eps=eps)',
        'TransformerBlock(d_model, n_heads, d_ff, dropout=dropout, norm_first=False, activation="gelu")',
    ),
]
