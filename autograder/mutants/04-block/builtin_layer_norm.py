"""Right values, but LayerNorm calls F.layer_norm, which the exercise forbids."""

import torch.nn.functional as F


def _forward(self, x):
    return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


LayerNorm.forward = _forward
