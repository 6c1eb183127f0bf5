"""The encoder's layers are built without activation="gelu", so they get the block's default ReLU."""

REPLACE = [
    (
        'TransformerBlock(d_model, n_heads, d_ff, dropout=dropout, norm_first=False, activation="gelu", eps=eps)',
        "TransformerBlock(d_model, n_heads, d_ff, dropout=dropout, norm_first=False, eps=eps)",
    ),
]
