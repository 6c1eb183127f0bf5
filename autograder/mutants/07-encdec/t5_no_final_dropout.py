"""T5Stack returns final_norm(h) without the dropout after it (T5 drops out each stack's output)."""

REPLACE = [
    (
        "out: Tensor = self.dropout(self.final_norm(h))",
        "out: Tensor = self.final_norm(h)",
    ),
]
