# target: flash_triton.py
"""On a GPU the wrapper launches 256 x 256 tiles with 4 pipeline stages: the K and V tiles of every stage
do not fit in the shared memory of one block (the interpreter has no such limit)."""

REPLACE = [
    (
        "block_m = block_m or (16 if INTERPRET else 128 if half else 64)",
        "block_m = block_m or (16 if INTERPRET else 256)",
    ),
    ("block_n = block_n or (16 if INTERPRET else 64)", "block_n = block_n or (16 if INTERPRET else 256)"),
    (
        'launch = {} if INTERPRET else {"num_warps": 8 if head_dim > 64 else 4, "num_stages": 3 if half else 2}',
        'launch = {} if INTERPRET else {"num_warps": 8 if head_dim > 64 else 4, "num_stages": 4}',
    ),
]
