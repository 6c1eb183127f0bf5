"""The encoder's layers are built without dropout=dropout, so they get the block's default 0: no dropout in training."""

REPLACE = [
    (
        'TransformerBlock(d_model, n_heads, d_ff, dropout=dropout, norm_first=False, activation="gelu", eps=eps)',
        'TransformerBlock(d_model, n_heads, d_ff, norm_first=False, activation="gelu", eps=eps)',
    ),
]
