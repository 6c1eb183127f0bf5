"""sample_tasks draws from torch's global generator (seeded with manual_seed)."""

REPLACE = [
    (
        "generator = torch.Generator().manual_seed(seed)\n    return torch.multinomial",
        "generator = torch.manual_seed(seed)\n    return torch.multinomial",
    )
]
