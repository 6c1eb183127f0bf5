"""RMSNorm computes in the input's dtype: in float16, x^2 overflows for |x| > 255 and the output is all zeros."""


def _forward(self, x):
    return x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + self.eps) * self.weight


RMSNorm.forward = _forward
