"""The Elman cell forgets bias_hh (PyTorch has two biases; they only add, but both are parameters)."""

REPLACE = [
    (
        "pre = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh  # (B, H)",
        "pre = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T  # (B, H)",
    )
]
