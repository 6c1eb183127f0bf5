"""BigBird seeds the global generator (torch.manual_seed(seed)) and draws from it: the same mask, the caller's random stream reset."""

REPLACE = [
    ("draws = torch.Generator().manual_seed(seed)  # one generator, rows in order", "torch.manual_seed(seed)"),
    (
        "chosen = candidates[torch.randperm(len(candidates), generator=draws)[:n_random_blocks]]",
        "chosen = candidates[torch.randperm(len(candidates))[:n_random_blocks]]",
    ),
]
