"""The block never passes the mask to its attention."""


def _forward(self, x, mask=None):
    x = self.residual(x, lambda h: self.attn(h)[0], self.norm1, self.dropout1)
    return self.residual(x, self.ff, self.norm2, self.dropout2)


TransformerBlock.forward = _forward
