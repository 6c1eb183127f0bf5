"""RMSNorm's weight starts random (torch.randn) instead of at ones."""

_init = RMSNorm.__init__


def _init_random(self, d_model, eps=1e-6):
    _init(self, d_model, eps)
    self.weight = nn.Parameter(torch.randn(d_model))


RMSNorm.__init__ = _init_random
