"""T5's norm centres its input (LayerNorm without a bias) instead of RMSNorm's plain rescaling."""


def _forward(self, x):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt(centred.square().mean(dim=-1, keepdim=True) + self.eps) * self.weight


RMSNorm.forward = _forward
