"""Always computes in float64, whatever the dtype of the positions."""


def sinusoidal_encoding(positions, d_model, base=10000.0):
    positions = positions.double()
    exponents = torch.arange(0, d_model, 2, dtype=torch.float64) / d_model
    angles = positions[:, None] * base**-exponents
    encoding = torch.empty(positions.shape[0], d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles)
    return encoding
