"""The block is always pre-norm: norm_first=False is ignored."""


def _residual(self, x, sublayer, norm, dropout):
    return x + dropout(sublayer(norm(x)))


TransformerBlock.residual = _residual
