"""Every step starts from h0: the hidden state is not carried through time."""

REPLACE = [("new = cell(x[:, t], h)  # (B, H)", "new = cell(x[:, t], h0 if h0 is not None else torch.zeros_like(h))")]
