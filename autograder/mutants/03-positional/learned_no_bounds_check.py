"""No check on the table's length: past max_len the slice is short and the addition fails with a broadcast error."""

REPLACE = [
    (
        'raise ValueError(f"positions up to {offset + length - 1} but the table has {self.max_len}")',
        "pass",
    )
]
