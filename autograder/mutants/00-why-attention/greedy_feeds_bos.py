"""Greedy decoding feeds BOS at every step instead of the token it just chose."""

REPLACE = [
    (
        "            y = logits.argmax(dim=-1)\n            tokens.append(y)",
        "            tokens.append(logits.argmax(dim=-1))",
    )
]
