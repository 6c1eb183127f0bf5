"""clip_grad_norm computes the clipped gradients but never writes them back."""


def clip_grad_norm(parameters, max_norm):
    params = list(parameters.parameters()) if isinstance(parameters, nn.Module) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        grads = [g * coef for g in grads]
    return total
