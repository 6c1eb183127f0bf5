"""The exact GELU with erf(x / 2) instead of erf(x / sqrt(2))."""

_gelu = gelu


def gelu(x, approximate="none"):
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x / 2.0))
    return _gelu(x, approximate)
