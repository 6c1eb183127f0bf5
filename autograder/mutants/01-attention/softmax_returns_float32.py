"""Computes the softmax in float32 for safety and forgets to cast back: float16 in, float32 out."""

_softmax = softmax


def softmax(x, dim=-1):
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return _softmax(x, dim=dim)
