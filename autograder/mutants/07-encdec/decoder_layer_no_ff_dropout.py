"""The decoder layer's feed-forward branch has no dropout (dropout3 is created but never used)."""

REPLACE = [
    (
        "out: Tensor = self.norm3(x + self.dropout3(self.ff(x)))",
        "out: Tensor = self.norm3(x + self.ff(x))",
    ),
]
