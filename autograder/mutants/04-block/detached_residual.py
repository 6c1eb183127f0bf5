"""The residual stream is detached, so gradients reach the input only through the branches."""


def _residual(self, x, sublayer, norm, dropout):
    if self.norm_first:
        return x.detach() + dropout(sublayer(norm(x)))
    return norm(x.detach() + dropout(sublayer(x)))


TransformerBlock.residual = _residual
