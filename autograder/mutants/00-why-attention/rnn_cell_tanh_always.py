"""Applies tanh whatever the nonlinearity: the 'linear' cell is not linear."""

REPLACE = [
    (
        'return torch.tanh(pre) if self.nonlinearity == "tanh" else pre',
        "return torch.tanh(pre)",
    )
]
