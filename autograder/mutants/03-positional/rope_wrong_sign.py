"""rotate_half returns [x2, -x1]: every vector turns the other way."""


def rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat((second, -first), dim=-1)
