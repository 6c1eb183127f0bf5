"""Right values, but gelu calls F.gelu, which the exercise forbids."""

import torch.nn.functional as F


def gelu(x, approximate="none"):
    return F.gelu(x, approximate=approximate)
