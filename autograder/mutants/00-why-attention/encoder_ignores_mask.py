"""The encoder runs over the padding: padded source tokens advance its state."""

REPLACE = [
    (
        "return run_rnn(self.encoder, self.src_embed(src), mask=src_mask)",
        "return run_rnn(self.encoder, self.src_embed(src))",
    )
]
