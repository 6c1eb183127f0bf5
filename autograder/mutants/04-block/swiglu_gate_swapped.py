"""SwiGLU with silu on the fc1 branch instead of the fc_gate branch."""

_forward = FeedForward.forward


def _swapped(self, x):
    if self.activation != "swiglu":
        return _forward(self, x)
    up = self.fc1(x)
    return self.fc2(up * torch.sigmoid(up) * self.fc_gate(x))


FeedForward.forward = _swapped
