"""The branches' outputs replace the residual stream instead of being added to it."""


def _residual(self, x, sublayer, norm, dropout):
    if self.norm_first:
        return dropout(sublayer(norm(x)))
    return norm(dropout(sublayer(x)))


TransformerBlock.residual = _residual
