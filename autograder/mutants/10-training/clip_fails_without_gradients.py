"""clip_grad_norm stacks the gradients' norms without a guard: no gradient at all raises instead of returning 0."""

REPLACE = [
    ("    if not grads:\n        return torch.tensor(0.0)\n", ""),
]
