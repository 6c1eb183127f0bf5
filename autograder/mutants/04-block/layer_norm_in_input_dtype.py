"""LayerNorm computes in the input's dtype: in float16, (x - mean)^2 overflows for a spread past ~255 and it returns the bias."""


def _forward(self, x):
    centred = x - x.mean(dim=-1, keepdim=True)
    variance = centred.square().mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt(variance + self.eps) * self.weight + self.bias


LayerNorm.forward = _forward
