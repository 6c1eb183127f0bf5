"""GPT-J's interleaved RoPE (pairs of adjacent features) where the course asks for Llama's half split."""


def rope_cos_sin(positions, d_head, base=10000.0):
    inv_freq = base ** -(torch.arange(0, d_head, 2, dtype=positions.dtype) / d_head)
    angles = (positions[:, None] * inv_freq).repeat_interleave(2, dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x):
    return torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
