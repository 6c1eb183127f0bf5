"""forward_backward never zeroes the gradients: each call adds to the previous call's."""


@torch.enable_grad()
def forward_backward(model, input_ids, attention_mask=None, amp_dtype=None, scaler=None, device_type="cpu"):
    with torch.autocast(device_type, dtype=AMP_DTYPES[amp_dtype or "bfloat16"], enabled=amp_dtype is not None):
        logits = model(input_ids, attention_mask=attention_mask)
    upcast = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    loss = causal_lm_loss(upcast, input_ids, attention_mask)
    torch.autograd.backward(scaler.scale(loss) if scaler is not None else loss)
    return loss.detach(), logits.detach()
