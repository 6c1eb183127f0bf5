"""Right behaviour, but Dropout calls F.dropout, which the exercise forbids."""

import torch.nn.functional as F


def _forward(self, x):
    return F.dropout(x, self.p, self.training)


Dropout.forward = _forward
