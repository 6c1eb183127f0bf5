"""LayerNorm scales by weight but never adds its bias."""


def _forward(self, x):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt(centred.square().mean(dim=-1, keepdim=True) + self.eps) * self.weight


LayerNorm.forward = _forward
