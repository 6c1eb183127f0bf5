"""Concatenates the sines and cosines ([sin…, cos…]) instead of interleaving them."""


def sinusoidal_encoding(positions, d_model, base=10000.0):
    exponents = torch.arange(0, d_model, 2, dtype=positions.dtype) / d_model
    angles = positions[:, None] * base**-exponents
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
