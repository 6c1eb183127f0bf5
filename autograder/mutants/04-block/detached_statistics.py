"""LayerNorm detaches its mean and variance, so their part of the gradient is lost."""


def _forward(self, x):
    mean = x.mean(dim=-1, keepdim=True).detach()
    variance = (x - mean).square().mean(dim=-1, keepdim=True).detach()
    return (x - mean) * torch.rsqrt(variance + self.eps) * self.weight + self.bias


LayerNorm.forward = _forward
