"""Correct values, but calls torch.softmax instead of writing it (forbidden)."""


def softmax(x, dim=-1):
    out = torch.softmax(x, dim=dim)
    return torch.nan_to_num(out, nan=0.0)
