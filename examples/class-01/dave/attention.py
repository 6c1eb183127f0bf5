"""Dave: a syntax error (a missing colon)."""

import torch


def softmax(x, dim=-1)
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
