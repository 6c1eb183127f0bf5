"""T5Attention fills masked scores with finfo.min and never zeroes fully masked rows: they average every key."""

REPLACE = [
    (
        'logits = logits.masked_fill(~mask, float("-inf"))',
        "logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)",
    ),
]
