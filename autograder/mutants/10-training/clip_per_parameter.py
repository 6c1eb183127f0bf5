"""clip_grad_norm clips each gradient by its own norm instead of the global norm."""


def clip_grad_norm(parameters, max_norm):
    params = list(parameters.parameters()) if isinstance(parameters, nn.Module) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    for g in grads:
        coef = max_norm / (torch.linalg.vector_norm(g) + 1e-6)
        if coef < 1.0:
            g.mul_(coef)
    return total
