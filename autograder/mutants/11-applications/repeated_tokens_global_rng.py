"""repeated_random_tokens draws from the global generator."""

REPLACE = [
    (
        "first = torch.randint(vocab_size, (batch, period), generator=generator)",
        "first = torch.randint(vocab_size, (batch, period))",
    )
]
