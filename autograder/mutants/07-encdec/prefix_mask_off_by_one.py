"""The prefix-LM mask lets every position see key j == prefix_length too (j <= prefix instead of j < prefix)."""


def prefix_lm_mask(prefix_lengths, seq_len):
    positions = torch.arange(seq_len)
    in_prefix = positions[None, None, :] <= prefix_lengths[:, None, None]
    seen = positions[None, :] <= positions[:, None]
    return (in_prefix | seen)[:, None]
