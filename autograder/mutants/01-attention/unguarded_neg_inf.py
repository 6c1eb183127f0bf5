"""Stable softmax, but a slice of all -inf gives NaN (no guard for fully masked rows)."""


def softmax(x, dim=-1):
    exp = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return exp / exp.sum(dim=dim, keepdim=True)
