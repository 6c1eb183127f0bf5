"""forward_backward always autocasts to float16, whatever amp_dtype asks for (bfloat16 on the CPU)."""


@torch.enable_grad()
def forward_backward(model, input_ids, attention_mask=None, amp_dtype=None, scaler=None, device_type="cpu"):
    model.zero_grad(set_to_none=True)
    with torch.autocast(device_type, dtype=torch.float16, enabled=amp_dtype is not None):
        logits = model(input_ids, attention_mask=attention_mask)
    upcast = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    loss = causal_lm_loss(upcast, input_ids, attention_mask)
    torch.autograd.backward(scaler.scale(loss) if scaler is not None else loss)
    return loss.detach(), logits.detach()
