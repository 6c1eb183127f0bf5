"""Reads the GRU's stacked gates in the order z, r, n (PyTorch's is r, z, n): nn.GRU weights load into the wrong gates."""

REPLACE = [
    (
        "gi_r, gi_z, gi_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=-1)  # each (B, H)",
        "gi_z, gi_r, gi_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=-1)  # each (B, H)",
    ),
    (
        "gh_r, gh_z, gh_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=-1)",
        "gh_z, gh_r, gh_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=-1)",
    ),
]
