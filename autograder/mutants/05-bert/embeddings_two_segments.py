"""The segment table always has BERT's 2 rows: type_vocab_size is ignored."""

REPLACE = [
    (
        "self.token_type_embeddings = nn.Embedding(type_vocab_size, d_model)",
        "self.token_type_embeddings = nn.Embedding(2, d_model)",
    ),
]
