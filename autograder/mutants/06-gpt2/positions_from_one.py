"""position_ids is cumsum(mask) without the - 1: positions start at 1."""


def position_ids(attention_mask):
    return attention_mask.long().cumsum(dim=-1)
