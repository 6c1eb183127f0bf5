# target: flash_triton.py
"""The Triton kernel masks its loads but not the scores of keys past Tk: they load as zeros and score 0, not -inf."""

REPLACE = [
    ("valid = col_ok[None, :]", "valid = cols[None, :] >= 0"),
]
