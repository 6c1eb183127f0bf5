"""Performer scales q and k by D^(-1/2) each, so the kernel is exp(q . k / D) instead of exp(q . k / sqrt(D))."""


def performer_attention(q, k, v, projection):
    scale = q.size(-1) ** -0.5
    phi_q = favor_features(q * scale, projection)
    phi_k = favor_features(k * scale, projection)
    return (phi_q @ (phi_k.transpose(-2, -1) @ v)) / (phi_q @ phi_k.sum(dim=-2)[..., None])
