"""Alice: a correct solution in her own style."""

import math

import torch


def softmax(x, dim=-1):
    shift = x.max(dim=dim, keepdim=True).values
    shift = shift.masked_fill(shift == float("-inf"), 0.0)
    e = (x - shift).exp()
    denom = e.sum(dim=dim, keepdim=True)
    return e / denom.clamp_min(torch.finfo(x.dtype).tiny) * (denom > 0)


def causal_mask(seq_len, device=None):
    i = torch.arange(seq_len, device=device)
    return i[:, None] >= i[None, :]


def padding_mask(lengths, seq_len):
    return (torch.arange(seq_len) < lengths.unsqueeze(-1)).view(len(lengths), 1, 1, seq_len)


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(k.shape[-1]))
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    weights = softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights
