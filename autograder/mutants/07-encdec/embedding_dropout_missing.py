"""The embeddings skip the dropout: table(ids) * sqrt(D) + PE is returned as it is, in training mode too."""

REPLACE = [
    (
        "embedded: Tensor = self.dropout(vectors + sinusoidal_encoding(positions, self.d_model).to(vectors.device))",
        "embedded: Tensor = vectors + sinusoidal_encoding(positions, self.d_model).to(vectors.device)",
    ),
]
