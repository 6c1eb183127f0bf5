"""BigBird's random blocks come from the global random generator, ignoring the seed."""


def bigbird_mask(length, block, window_blocks, n_random_blocks, n_global_blocks, seed):
    n_blocks = -(-length // block)
    index = torch.arange(n_blocks)
    pattern = (index[:, None] - index[None, :]).abs() <= window_blocks
    pattern[:n_global_blocks, :] = True
    pattern[:, :n_global_blocks] = True
    generator = torch.Generator().manual_seed(seed)
    for row in range(n_global_blocks, n_blocks):
        candidates = (~pattern[row]).nonzero().flatten()
        chosen = candidates[torch.randperm(len(candidates))[:n_random_blocks]]
        pattern[row, chosen] = True
    blocks = torch.arange(length) // block
    return pattern[blocks][:, blocks]
