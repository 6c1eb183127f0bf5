# target: flash_triton.py
"""The Triton kernel pads the features to BLOCK_D without masking them: loads past D read the next row (or past the end)."""

REPLACE = [
    ("    d_ok = offs_d < head_dim", "    d_ok = offs_d < BLOCK_D"),
]
