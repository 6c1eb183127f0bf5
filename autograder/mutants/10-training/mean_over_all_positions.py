"""causal_lm_loss divides the summed loss of the real targets by B * (T - 1), padding included."""


def causal_lm_loss(logits, input_ids, attention_mask=None):
    labels = input_ids[:, 1:]
    if attention_mask is not None:
        labels = labels.masked_fill(attention_mask[:, 1:] == 0, IGNORE_INDEX)
    per = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(), reduction="none")
    return per.sum() / labels.numel()
