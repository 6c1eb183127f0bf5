"""The reset gate multiplies h W_hn^T only, with b_hn added outside (the paper's form, not PyTorch's)."""

REPLACE = [
    (
        "new = torch.tanh(gi_n + reset * gh_n)",
        "new = torch.tanh(gi_n + reset * (gh_n - self.bias_hh.chunk(3)[2]) + self.bias_hh.chunk(3)[2])",
    )
]
