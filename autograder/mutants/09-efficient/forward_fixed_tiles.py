"""The tiled forward ignores block_q and block_k and always uses 64 x 64 tiles (no 100 x 75 matrix, so memory passes)."""

REPLACE = [
    (
        "    seq_q, seq_k = q.size(-2), k.size(-2)\n    scale = 1.0 / math.sqrt(q.size(-1))\n    outs, lses = [], []",
        "    seq_q, seq_k = q.size(-2), k.size(-2)\n    scale = 1.0 / math.sqrt(q.size(-1))\n    outs, lses = [], []\n"
        "    block_q = block_k = 64",
    ),
]
