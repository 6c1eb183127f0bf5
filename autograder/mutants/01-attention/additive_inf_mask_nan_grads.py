"""Adds an additive -inf mask and guards the softmax with torch.where: right forward, NaN gradients for fully masked rows."""


def softmax(x, dim=-1):
    exp = torch.exp(x - x.amax(dim=dim, keepdim=True))
    total = exp.sum(dim=dim, keepdim=True)
    return torch.where(total > 0, exp / total, torch.zeros_like(exp))


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores + torch.zeros_like(scores).masked_fill(~mask, float("-inf"))
    weights = softmax(scores, dim=-1)
    return weights @ v, weights
