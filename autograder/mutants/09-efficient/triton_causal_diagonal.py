# target: flash_triton.py
"""The Triton kernel's causal mask also hides the diagonal (j < i instead of j <= i)."""

REPLACE = [
    ("valid = valid & (cols[None, :] <= offs_m[:, None])", "valid = valid & (cols[None, :] < offs_m[:, None])"),
]
