"""Entry t is the norm of dh_T/dh_(t+1): the gradient norm is taken one step late."""

REPLACE = [
    ("return torch.stack(norms).detach()", "return torch.cat([torch.stack(norms)[1:], norms[-1][None]]).detach()")
]
