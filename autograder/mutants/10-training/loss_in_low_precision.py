"""forward_backward computes the loss on the bfloat16/float16 logits instead of upcasting them to float32."""


@torch.enable_grad()
def forward_backward(model, input_ids, attention_mask=None, amp_dtype=None, scaler=None, device_type="cpu"):
    model.zero_grad(set_to_none=True)
    with torch.autocast(device_type, dtype=AMP_DTYPES[amp_dtype or "bfloat16"], enabled=amp_dtype is not None):
        logits = model(input_ids, attention_mask=attention_mask)
    loss = causal_lm_loss(logits, input_ids, attention_mask)
    torch.autograd.backward(scaler.scale(loss) if scaler is not None else loss)
    return loss.detach(), logits.detach()
