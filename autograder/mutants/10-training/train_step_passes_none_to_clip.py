"""train_step passes max_norm=None straight to clip_grad_norm, which then divides None by the norm."""

REPLACE = [
    (
        "grad_norm = float(clip_grad_norm(model, math.inf if max_norm is None else max_norm))",
        "grad_norm = float(clip_grad_norm(model, max_norm))",
    ),
]
