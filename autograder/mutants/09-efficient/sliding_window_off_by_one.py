"""The window is one key too narrow on each side: |i - j| < window instead of <= window."""


def sliding_window_mask(length, window, global_tokens=()):
    positions = torch.arange(length)
    mask = (positions[:, None] - positions[None, :]).abs() < window
    if len(global_tokens):
        index = torch.as_tensor(list(global_tokens), dtype=torch.long)
        mask[index, :] = True
        mask[:, index] = True
    return mask
