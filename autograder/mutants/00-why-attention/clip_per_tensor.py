"""Clips each tensor by its own norm instead of the global norm."""


def clip_by_global_norm(grads, max_norm):
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).to(grads[0].dtype)
    return [g * torch.clamp(max_norm / g.norm(), max=1.0) for g in grads], norm
