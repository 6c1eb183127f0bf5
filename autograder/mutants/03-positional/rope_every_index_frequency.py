"""Frequencies base^(-i/Dh) for i < Dh/2 (forgets the factor 2): the slowest pair turns too fast."""


def rope_cos_sin(positions, d_head, base=10000.0):
    inv_freq = base ** -(torch.arange(d_head // 2, dtype=positions.dtype) / d_head)
    angles = positions[:, None] * inv_freq
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()
