"""Dropout rescales the survivors through .data, so the gradient misses the 1 / (1 - p)."""


def _forward(self, x):
    if not self.training or self.p == 0.0:
        return x
    if self.p == 1.0:
        return torch.zeros_like(x)
    out = x * (torch.rand_like(x) >= self.p)
    out.data /= 1.0 - self.p
    return out


Dropout.forward = _forward
