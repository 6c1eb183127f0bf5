"""Builds the causal mask as the upper triangle (lets queries see the future)."""


def causal_mask(seq_len, device=None):
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).triu()
