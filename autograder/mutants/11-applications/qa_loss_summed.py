"""The QA loss adds the two cross-entropies instead of averaging them."""

REPLACE = [("F.cross_entropy(end_logits, end_positions)) / 2", "F.cross_entropy(end_logits, end_positions))")]
