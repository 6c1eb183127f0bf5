"""The prefix's queries attend to the whole sequence, the target included (the prefix applied to rows, not keys)."""


def prefix_lm_mask(prefix_lengths, seq_len):
    positions = torch.arange(seq_len)
    query_in_prefix = positions[None, :, None] < prefix_lengths[:, None, None]  # (B, T, 1)
    seen = positions[None, :] <= positions[:, None]
    return (query_in_prefix | seen)[:, None]
