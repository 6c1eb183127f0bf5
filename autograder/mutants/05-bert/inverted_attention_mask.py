"""The key padding mask is inverted: True where attention_mask is 0 (padding may be attended, real tokens not)."""


def key_padding_mask(attention_mask):
    return (attention_mask == 0)[:, None, None, :]
