"""Indexes the halves as x[:, :, :, :half]: works for (B, H, T, Dh) only, not for other shapes."""


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[:, :, :, half:], x[:, :, :, :half]), dim=-1)
