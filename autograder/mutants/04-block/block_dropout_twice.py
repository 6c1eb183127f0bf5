"""The block drops each branch twice: once inside the lambda and again in residual (survivors scaled 1/(1-p)^2)."""


def _forward(self, x, mask=None):
    x = self.residual(x, lambda h: self.dropout1(self.attn(h, mask=mask)[0]), self.norm1, self.dropout1)
    return self.residual(x, lambda h: self.dropout2(self.ff(h)), self.norm2, self.dropout2)


TransformerBlock.forward = _forward
