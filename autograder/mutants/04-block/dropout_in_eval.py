"""Dropout ignores self.training: it also drops in eval mode."""


def _forward(self, x):
    if self.p == 0.0:
        return x
    if self.p == 1.0:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) >= self.p) / (1.0 - self.p)


Dropout.forward = _forward
