"""T5Stack's dropout after the final norm is written inline and does not divide the survivors by 1 - p."""

REPLACE = [
    (
        "out: Tensor = self.dropout(self.final_norm(h))",
        "out: Tensor = self.final_norm(h)\n"
        "        if self.training and self.dropout.p > 0:\n"
        "            out = out * (torch.rand_like(out) >= self.dropout.p)",
    ),
]
