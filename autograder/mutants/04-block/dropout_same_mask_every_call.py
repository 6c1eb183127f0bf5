"""Dropout reseeds the generator in every call ("for reproducibility"), so it drops the same elements each time."""


def _forward(self, x):
    if not self.training or self.p == 0.0:
        return x
    if self.p == 1.0:
        return torch.zeros_like(x)
    torch.manual_seed(0)
    return x * (torch.rand_like(x) >= self.p) / (1.0 - self.p)


Dropout.forward = _forward
