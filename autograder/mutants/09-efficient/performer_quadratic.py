"""Performer multiplies phi(q) phi(k)^T first: right values, but a (Tq, Tk) matrix and quadratic cost."""


def performer_attention(q, k, v, projection):
    scale = q.size(-1) ** -0.25
    phi_q = favor_features(q * scale, projection)
    phi_k = favor_features(k * scale, projection)
    weights = phi_q @ phi_k.transpose(-2, -1)
    return weights @ v / weights.sum(dim=-1, keepdim=True)
