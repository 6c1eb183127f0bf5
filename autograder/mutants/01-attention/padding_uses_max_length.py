"""Makes the padding mask max(lengths) wide instead of seq_len."""


def padding_mask(lengths, seq_len):
    positions = torch.arange(int(lengths.max()), device=lengths.device)
    return (positions[None, :] < lengths[:, None])[:, None, None, :]
