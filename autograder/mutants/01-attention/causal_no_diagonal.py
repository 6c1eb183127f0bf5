"""Leaves the diagonal out of the causal mask (a token cannot see itself)."""


def causal_mask(seq_len, device=None):
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril(-1)
