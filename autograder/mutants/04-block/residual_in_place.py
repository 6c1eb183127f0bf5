"""The residual add is in place (x += ...): the block overwrites the caller's input tensor."""


def _residual(self, x, sublayer, norm, dropout):
    if self.norm_first:
        x += dropout(sublayer(norm(x)))
        return x
    x += dropout(sublayer(x))
    return norm(x)


TransformerBlock.residual = _residual
