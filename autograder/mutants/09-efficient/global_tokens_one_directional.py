"""Global tokens attend everywhere, but the other tokens do not attend them (only their rows are set)."""


def sliding_window_mask(length, window, global_tokens=()):
    positions = torch.arange(length)
    mask = (positions[:, None] - positions[None, :]).abs() <= window
    if len(global_tokens):
        mask[torch.as_tensor(list(global_tokens), dtype=torch.long), :] = True
    return mask
