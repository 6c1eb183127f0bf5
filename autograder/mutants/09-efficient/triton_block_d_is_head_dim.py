# target: flash_triton.py
"""The Triton wrapper uses the head size itself as BLOCK_D: tl.arange needs a power of two (D = 24, 40 fail)."""

REPLACE = [
    ("BLOCK_D=max(16, triton.next_power_of_2(head_dim)),", "BLOCK_D=max(16, head_dim),"),
]
