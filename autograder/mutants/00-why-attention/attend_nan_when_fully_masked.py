"""Plain softmax over -inf scores: a source with no real token gives NaN weights."""


def attend(scores, values, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights[:, None, :] @ values)[:, 0], weights
