"""The dropout is applied to the scaled word vectors, before the positions are added: dropout(table(ids)·√D) + PE."""

REPLACE = [
    (
        "embedded: Tensor = self.dropout(vectors + sinusoidal_encoding(positions, self.d_model).to(vectors.device))",
        "embedded: Tensor = self.dropout(vectors) + sinusoidal_encoding(positions, self.d_model).to(vectors.device)",
    ),
]
