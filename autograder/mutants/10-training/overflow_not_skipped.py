"""train_step takes the optimizer step even when unscale_ found inf or NaN gradients."""


def train_step(model, optimizer, input_ids, attention_mask=None, max_norm=None, amp_dtype=None, scaler=None, device_type="cpu"):
    loss, _ = forward_backward(model, input_ids, attention_mask, amp_dtype, scaler, device_type)
    found_inf = scaler.unscale_(model) if scaler is not None else False
    grad_norm = float(clip_grad_norm(model, math.inf if max_norm is None else max_norm))
    optimizer.step()
    if scaler is not None:
        scaler.update(found_inf)
    return {"loss": float(loss), "grad_norm": grad_norm, "skipped": False}
