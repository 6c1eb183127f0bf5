"""best_span returns (ends, starts, scores)."""

REPLACE = [("return flat // length, flat % length, best", "return flat % length, flat // length, best")]
