"""performer_attention scales q and k by D^(-1/4) with *=, which changes the caller's tensors."""


def performer_attention(q, k, v, projection):
    scale = q.size(-1) ** -0.25
    q *= scale
    k *= scale
    phi_q = favor_features(q, projection)
    phi_k = favor_features(k, projection)
    kv = phi_k.transpose(-2, -1) @ v
    normaliser = phi_q @ phi_k.sum(dim=-2)[..., None]
    return (phi_q @ kv) / normaliser
