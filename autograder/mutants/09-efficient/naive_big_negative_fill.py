"""naive_attention masks with -1e9 instead of -inf: allowed scores below -1e9 lose to the masked ones."""

REPLACE = [
    ('scores = scores.masked_fill(~allowed, float("-inf"))', "scores = scores.masked_fill(~allowed, -1e9)"),
]
