"""T5Layer drops out the attention branches but not the feed-forward branch."""

REPLACE = [
    (
        "out: Tensor = x + self.dropout(self.ff(self.ff_norm(x)))",
        "out: Tensor = x + self.ff(self.ff_norm(x))",
    ),
]
