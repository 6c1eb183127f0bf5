"""Linformer reads N(0, 1/K) as a standard deviation of 1/K (it is the variance): E and F start K^(1/2) times too small."""

REPLACE = [
    (
        "self.E = nn.Parameter(torch.randn(k_proj_dim, seq_len) / math.sqrt(k_proj_dim))",
        "self.E = nn.Parameter(torch.randn(k_proj_dim, seq_len) / k_proj_dim)",
    ),
    (
        "self.F = nn.Parameter(torch.randn(k_proj_dim, seq_len) / math.sqrt(k_proj_dim))",
        "self.F = nn.Parameter(torch.randn(k_proj_dim, seq_len) / k_proj_dim)",
    ),
]
