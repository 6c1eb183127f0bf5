"""GPT.run_blocks checkpoints each block without its mask: checkpointed, the model attends to the future and to padding."""

REPLACE = [
    (
        "x = checkpoint(block, x, mask, use_reentrant=False)  # keeps x only; recomputes the rest in backward",
        "x = checkpoint(block, x, use_reentrant=False)  # keeps x only; recomputes the rest in backward",
    ),
]
