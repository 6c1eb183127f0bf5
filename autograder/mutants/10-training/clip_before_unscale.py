"""train_step clips (and measures) the gradients before unscaling them: the clipping sees scaled gradients."""


def train_step(model, optimizer, input_ids, attention_mask=None, max_norm=None, amp_dtype=None, scaler=None, device_type="cpu"):
    loss, _ = forward_backward(model, input_ids, attention_mask, amp_dtype, scaler, device_type)
    grad_norm = float(clip_grad_norm(model, math.inf if max_norm is None else max_norm))
    found_inf = scaler.unscale_(model) if scaler is not None else False
    if found_inf:
        grad_norm = math.inf
    else:
        optimizer.step()
    if scaler is not None:
        scaler.update(found_inf)
    return {"loss": float(loss), "grad_norm": grad_norm, "skipped": found_inf}
