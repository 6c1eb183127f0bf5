"""The tanh GELU with sqrt(pi / 2) where sqrt(2 / pi) belongs."""

_gelu = gelu


def gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(math.pi / 2.0) * (x + 0.044715 * x**3)))
    return _gelu(x, approximate)
