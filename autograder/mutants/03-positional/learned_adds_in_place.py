"""Adds the position vectors into x in place (x += rows): the caller's embeddings change."""

REPLACE = [("return x + self.weight[offset : offset + length]", "return x.add_(self.weight[offset : offset + length])")]
