"""freeze never unfreezes: a mode set before leaks into the next call."""

REPLACE = [("param.requires_grad_(not frozen)", "param.requires_grad_(param.requires_grad and not frozen)")]
