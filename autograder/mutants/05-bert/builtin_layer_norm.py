"""Right values, but the pasted LayerNorm calls F.layer_norm, which the course forbids."""

import torch.nn.functional as F


def _forward(self, x):
    return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


LayerNorm.forward = _forward
