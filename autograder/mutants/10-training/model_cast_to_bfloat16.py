"""forward_backward converts the whole model to the low-precision dtype instead of using autocast."""


@torch.enable_grad()
def forward_backward(model, input_ids, attention_mask=None, amp_dtype=None, scaler=None, device_type="cpu"):
    model.zero_grad(set_to_none=True)
    if amp_dtype is not None:
        model.to(AMP_DTYPES[amp_dtype])
    logits = model(input_ids, attention_mask=attention_mask)
    upcast = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    loss = causal_lm_loss(upcast, input_ids, attention_mask)
    torch.autograd.backward(scaler.scale(loss) if scaler is not None else loss)
    return loss.detach(), logits.detach()
