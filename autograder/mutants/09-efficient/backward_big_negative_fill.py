"""The tiled backward masks the recomputed causal scores with -1e9 instead of -inf."""

REPLACE = [
    (
        "            s = q_tile @ k_tile.transpose(-2, -1) * scale  # (B, H, Bq, Bk)\n"
        "            if causal:\n"
        "                cols = torch.arange(j0, j1, device=q.device)\n"
        '                s = s.masked_fill(cols[None, :] > rows[:, None], float("-inf"))',
        "            s = q_tile @ k_tile.transpose(-2, -1) * scale  # (B, H, Bq, Bk)\n"
        "            if causal:\n"
        "                cols = torch.arange(j0, j1, device=q.device)\n"
        "                s = s.masked_fill(cols[None, :] > rows[:, None], -1e9)",
    ),
]
