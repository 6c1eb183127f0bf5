"""Dropout keeps each element with probability p (instead of dropping it with probability p)."""


def _forward(self, x):
    if not self.training or self.p == 0.0:
        return x
    if self.p == 1.0:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) < self.p) / (1.0 - self.p)


Dropout.forward = _forward
