"""Rotates in place on a view of x, which corrupts x and breaks autograd."""


def apply_rope(x, cos, sin):
    rotated = rotate_half(x) * sin
    return x.mul_(cos).add_(rotated)
