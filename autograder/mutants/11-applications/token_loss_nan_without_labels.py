"""The token-classification loss is NaN when no position is labelled (0 / 0)."""

REPLACE = [("        if not bool(labelled.any()):\n            return logits, logits.sum() * 0.0\n", "")]
