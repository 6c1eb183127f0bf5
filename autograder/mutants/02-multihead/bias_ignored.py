"""Ignores the `bias` switch: the four projections always have biases."""

REPLACE = [
    (
        "self.q_proj = nn.Linear(d_model, self.n_heads * self.d_head, bias=bias)",
        "bias = True\n        self.q_proj = nn.Linear(d_model, self.n_heads * self.d_head, bias=bias)",
    )
]
