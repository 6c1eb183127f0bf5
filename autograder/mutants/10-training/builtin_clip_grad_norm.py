"""Right values, but clip_grad_norm calls torch.nn.utils.clip_grad_norm_, which the exercise forbids."""


def clip_grad_norm(parameters, max_norm):
    params = list(parameters.parameters()) if isinstance(parameters, nn.Module) else list(parameters)
    return torch.nn.utils.clip_grad_norm_(params, max_norm)
