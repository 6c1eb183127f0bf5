"""run_blocks ignores `checkpointed`: same values and gradients, but every activation is kept."""


def run_blocks(blocks, x, mask, checkpointed=False):
    for block in blocks:
        x = block(x, mask=mask)
    return x
