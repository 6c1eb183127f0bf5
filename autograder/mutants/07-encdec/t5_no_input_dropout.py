"""T5Stack feeds the embedded tokens to its first layer without the input dropout."""

REPLACE = [
    (
        "h = self.dropout(x)\n",
        "h = x\n",
    ),
]
