"""The tiled forward folds 1/sqrt(D) into q once (FlashAttention-2 style) with q.mul_, changing the caller's q."""

REPLACE = [
    (
        "    seq_q, seq_k = q.size(-2), k.size(-2)\n    scale = 1.0 / math.sqrt(q.size(-1))\n    outs, lses = [], []",
        "    seq_q, seq_k = q.size(-2), k.size(-2)\n    q = q.mul_(1.0 / math.sqrt(q.size(-1)))\n    scale = 1.0\n"
        "    outs, lses = [], []",
    ),
]
