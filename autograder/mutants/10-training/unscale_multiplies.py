"""DynamicLossScaler.unscale_ multiplies the gradients by the scale instead of dividing them."""


def _unscale_(self, parameters):
    params = list(parameters.parameters()) if isinstance(parameters, nn.Module) else list(parameters)
    found_inf = False
    for p in params:
        if p.grad is not None:
            p.grad.mul_(self.loss_scale)
            found_inf = found_inf or not bool(torch.isfinite(p.grad).all())
    return found_inf


DynamicLossScaler.unscale_ = _unscale_
