"""Ignores `approximate`: always the exact (erf) GELU."""


def gelu(x, approximate="none"):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
