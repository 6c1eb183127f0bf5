"""Applies `bias` to q_proj, k_proj and v_proj only: out_proj always has a bias."""

REPLACE = [
    (
        "self.out_proj = nn.Linear(self.n_heads * self.d_head, d_model, bias=bias)",
        "self.out_proj = nn.Linear(self.n_heads * self.d_head, d_model)",
    )
]
