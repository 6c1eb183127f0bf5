"""LayerNorm adds eps to the standard deviation instead of to the variance."""


def _forward(self, x):
    centred = x - x.mean(dim=-1, keepdim=True)
    std = centred.square().mean(dim=-1, keepdim=True).sqrt()
    return centred / (std + self.eps) * self.weight + self.bias


LayerNorm.forward = _forward
