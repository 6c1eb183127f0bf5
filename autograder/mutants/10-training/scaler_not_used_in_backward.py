"""forward_backward calls backward on the loss itself even when a scaler is given: nothing is scaled."""


@torch.enable_grad()
def forward_backward(model, input_ids, attention_mask=None, amp_dtype=None, scaler=None, device_type="cpu"):
    model.zero_grad(set_to_none=True)
    with torch.autocast(device_type, dtype=AMP_DTYPES[amp_dtype or "bfloat16"], enabled=amp_dtype is not None):
        logits = model(input_ids, attention_mask=attention_mask)
    upcast = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    loss = causal_lm_loss(upcast, input_ids, attention_mask)
    torch.autograd.backward(loss)
    return loss.detach(), logits.detach()
