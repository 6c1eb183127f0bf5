"""Dropout is applied to the residual stream after the add, not to the branch's output."""


def _residual(self, x, sublayer, norm, dropout):
    if self.norm_first:
        return dropout(x + sublayer(norm(x)))
    return norm(dropout(x + sublayer(x)))


TransformerBlock.residual = _residual
