"""Subtracts the max from x in place (x -= max): the caller's tensor is changed."""


def softmax(x, dim=-1):
    x_max = x.amax(dim=dim, keepdim=True)
    x_max = torch.where(torch.isfinite(x_max), x_max, torch.zeros_like(x_max))
    exp = torch.exp(x.sub_(x_max))
    total = exp.sum(dim=dim, keepdim=True)
    return exp / torch.where(total > 0, total, torch.ones_like(total))
