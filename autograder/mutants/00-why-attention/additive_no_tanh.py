"""Bahdanau without the tanh: a linear score v^T (W_q q + W_k k), which no longer depends on q's pairing with k."""

REPLACE = [
    (
        "projected = torch.tanh(self.query_proj(query)[:, None, :] + self.key_proj(keys))  # (B, S, A)",
        "projected = self.query_proj(query)[:, None, :] + self.key_proj(keys)  # (B, S, A)",
    )
]
