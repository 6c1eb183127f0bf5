"""Always uses base 10000 for the rotary frequencies, whatever `base` says."""

REPLACE = [
    (
        "inv_freq = base ** -(torch.arange(0, d_head, 2, dtype=positions.dtype) / d_head)  # (Dh/2,)",
        "inv_freq = 10000.0 ** -(torch.arange(0, d_head, 2, dtype=positions.dtype) / d_head)  # (Dh/2,)",
    )
]
