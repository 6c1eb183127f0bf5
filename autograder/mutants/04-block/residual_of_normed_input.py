"""Pre-norm that adds the update to the normalised input (h = norm(x); h + sublayer(h)) instead of to x."""


def _residual(self, x, sublayer, norm, dropout):
    if self.norm_first:
        h = norm(x)
        return h + dropout(sublayer(h))
    return norm(x + dropout(sublayer(x)))


TransformerBlock.residual = _residual
