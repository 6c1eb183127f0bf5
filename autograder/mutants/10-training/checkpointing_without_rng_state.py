"""run_blocks checkpoints with preserve_rng_state=False: in train mode the recomputed blocks draw other dropout masks."""

REPLACE = [
    (
        "x = checkpoint(block, x, mask, use_reentrant=False)  # keeps x only; recomputes the rest in backward",
        "x = checkpoint(block, x, mask, use_reentrant=False, preserve_rng_state=False)",
    ),
]
