"""The loss averages over every position, padding included."""

REPLACE = [("return (losses * mask).sum() / mask.sum()", "return losses.mean() + 0 * mask.sum()")]
