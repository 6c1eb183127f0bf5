"""BigBird's random blocks are drawn among all blocks, so they often repeat window or global blocks."""


def bigbird_mask(length, block, window_blocks, n_random_blocks, n_global_blocks, seed):
    n_blocks = -(-length // block)
    index = torch.arange(n_blocks)
    pattern = (index[:, None] - index[None, :]).abs() <= window_blocks
    pattern[:n_global_blocks, :] = True
    pattern[:, :n_global_blocks] = True
    generator = torch.Generator().manual_seed(seed)
    for row in range(n_global_blocks, n_blocks):
        candidates = torch.arange(n_blocks)
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:n_random_blocks]]
        pattern[row, chosen] = True
    blocks = torch.arange(length) // block
    return pattern[blocks][:, blocks]
