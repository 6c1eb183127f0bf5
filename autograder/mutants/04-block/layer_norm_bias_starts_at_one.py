"""LayerNorm's bias starts at ones (copied from the weight's line) instead of zeros."""

REPLACE = [
    (
        "self.bias = nn.Parameter(torch.zeros(d_model))",
        "self.bias = nn.Parameter(torch.ones(d_model))",
    ),
]
