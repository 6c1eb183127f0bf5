"""The embeddings' LayerNorm hard-codes BERT's eps (1e-12) instead of using the eps it is given."""

REPLACE = [
    (
        "self.norm = LayerNorm(d_model, eps=eps)\n        self.dropout = Dropout(dropout)",
        "self.norm = LayerNorm(d_model, eps=1e-12)\n        self.dropout = Dropout(dropout)",
    ),
]
