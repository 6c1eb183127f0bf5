"""Reshapes `lengths` in place (unsqueeze_), so the caller's lengths tensor becomes (B, 1)."""


def padding_mask(lengths, seq_len):
    positions = torch.arange(seq_len, device=lengths.device)
    return (positions[None, :] < lengths.unsqueeze_(-1))[:, None, None, :]
