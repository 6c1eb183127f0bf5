"""The model builds its embeddings without dropout=dropout: they always drop with BertEmbeddings' default 0.1."""

REPLACE = [
    (
        "self.embeddings = BertEmbeddings(vocab_size, d_model, max_len, type_vocab_size, eps=eps, dropout=dropout)",
        "self.embeddings = BertEmbeddings(vocab_size, d_model, max_len, type_vocab_size, eps=eps)",
    ),
]
