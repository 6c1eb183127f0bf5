"""Initialises the table with zeros."""

REPLACE = [
    (
        "self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)",
        "self.weight = nn.Parameter(torch.zeros(max_len, d_model))",
    )
]
