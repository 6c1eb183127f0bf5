"""The softmax normalises over the batch (dim 0) instead of the source positions."""


def attend(scores, values, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, dim=0)
    return (weights[:, None, :] @ values)[:, 0], weights
