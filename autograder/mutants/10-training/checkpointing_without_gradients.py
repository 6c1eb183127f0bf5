"""GPT.run_blocks "saves memory" by running the blocks under no_grad: no gradient reaches them."""


def _run_blocks(self, x, mask):
    for block in self.blocks:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            with torch.no_grad():
                x = block(x, mask=mask)
        else:
            x = block(x, mask=mask)
    return x


GPT.run_blocks = _run_blocks
