"""train_step returns the loss and the gradient norm as tensors (clip_grad_norm's result as it comes) instead of floats."""

REPLACE = [
    (
        "grad_norm = float(clip_grad_norm(model, math.inf if max_norm is None else max_norm))",
        "grad_norm = clip_grad_norm(model, math.inf if max_norm is None else max_norm)",
    ),
    (
        'return {"loss": float(loss), "grad_norm": grad_norm, "skipped": overflow}',
        'return {"loss": loss, "grad_norm": grad_norm, "skipped": overflow}',
    ),
]
