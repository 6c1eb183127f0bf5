"""Outputs at padded steps hold the carried state instead of zeros."""

REPLACE = [("outputs.append(torch.where(real, h, torch.zeros_like(h)))", "outputs.append(h)")]
