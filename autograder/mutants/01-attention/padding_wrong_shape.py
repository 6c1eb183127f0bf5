"""Returns the padding mask as (batch, seq_len), which broadcasts over the wrong dims."""


def padding_mask(lengths, seq_len):
    return torch.arange(seq_len)[None, :] < lengths[:, None]
