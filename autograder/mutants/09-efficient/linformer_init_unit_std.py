"""Linformer's E and F start as N(0, 1) instead of N(0, 1/K)."""

REPLACE = [
    (
        "self.E = nn.Parameter(torch.randn(k_proj_dim, seq_len) / math.sqrt(k_proj_dim))",
        "self.E = nn.Parameter(torch.randn(k_proj_dim, seq_len))",
    ),
    (
        "self.F = nn.Parameter(torch.randn(k_proj_dim, seq_len) / math.sqrt(k_proj_dim))",
        "self.F = nn.Parameter(torch.randn(k_proj_dim, seq_len))",
    ),
]
