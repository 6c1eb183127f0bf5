"""train_step reads max_norm=None as "the usual 1.0" and clips, instead of only measuring the norm."""

REPLACE = [
    (
        "grad_norm = float(clip_grad_norm(model, math.inf if max_norm is None else max_norm))",
        "grad_norm = float(clip_grad_norm(model, max_norm or 1.0))",
    ),
]
