"""RMSNorm centres its input first (that is LayerNorm without a bias)."""


def _forward(self, x):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt(centred.square().mean(dim=-1, keepdim=True) + self.eps) * self.weight


RMSNorm.forward = _forward
