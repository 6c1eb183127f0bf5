"""Initialises the table with torch.randn alone (std 1, not 0.02)."""

REPLACE = [
    (
        "self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)",
        "self.weight = nn.Parameter(torch.randn(max_len, d_model))",
    )
]
