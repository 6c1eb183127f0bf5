"""Uses the column index j in the exponent instead of 2i, so a sin/cos pair does not share a frequency."""


def sinusoidal_encoding(positions, d_model, base=10000.0):
    angles = positions[:, None] * base ** -(torch.arange(d_model, dtype=positions.dtype) / d_model)
    encoding = angles.clone()
    encoding[:, 0::2] = angles[:, 0::2].sin()
    encoding[:, 1::2] = angles[:, 1::2].cos()
    return encoding
