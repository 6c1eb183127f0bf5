"""configure_optimizer hard-codes GPT-3's betas (0.9, 0.95) instead of using the betas it is given."""

REPLACE = [
    (
        "return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8)",
        "return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)",
    ),
]
