"""The tiny encoder's block attends to padding."""

REPLACE = [("x = self.norm(self.block(x, mask=mask))", "x = self.norm(self.block(x))")]
