"""Attention over the padded positions: the mask is never applied."""

REPLACE = [('        scores = scores.masked_fill(~mask, float("-inf"))', "        scores = scores + 0")]
