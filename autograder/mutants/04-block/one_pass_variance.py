"""LayerNorm computes the variance as mean(x^2) - mean(x)^2 (cancels when the mean is large)."""


def _forward(self, x):
    mean = x.mean(dim=-1, keepdim=True)
    variance = (x * x).mean(dim=-1, keepdim=True) - mean * mean
    return (x - mean) * torch.rsqrt(variance + self.eps) * self.weight + self.bias


LayerNorm.forward = _forward
