"""Padded steps advance the state (the outputs are zeroed, but the state runs on over the padding)."""

REPLACE = [("h = torch.where(real, new, h)", "h = new")]
