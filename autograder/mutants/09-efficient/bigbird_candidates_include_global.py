"""BigBird draws its random blocks among the blocks outside the window only: global columns stay candidates."""

REPLACE = [
    (
        "candidates = (~pattern[row]).nonzero().flatten()  # increasing order",
        "candidates = ((index - row).abs() > window_blocks).nonzero().flatten()",
    ),
]
