"""Adds the repeat dim in place (x.unsqueeze_), so the caller's key/value tensor gains a dim."""


def repeat_kv(x, n_rep):
    batch, heads, length, d_head = x.shape
    return x.unsqueeze_(2).expand(batch, heads, n_rep, length, d_head).reshape(batch, heads * n_rep, length, d_head)
