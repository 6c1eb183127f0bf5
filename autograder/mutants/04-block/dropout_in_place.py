"""Dropout zeroes and rescales its input in place (x.mul_), changing the caller's tensor."""


def _forward(self, x):
    if not self.training or self.p == 0.0:
        return x
    if self.p == 1.0:
        return torch.zeros_like(x)
    keep = torch.rand_like(x) >= self.p
    return x.mul_(keep).div_(1.0 - self.p)


Dropout.forward = _forward
