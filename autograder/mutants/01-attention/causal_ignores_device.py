"""Always builds the causal mask on the CPU, whatever `device` says."""


def causal_mask(seq_len, device=None):
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
