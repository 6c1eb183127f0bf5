"""causal_lm_loss ignores attention_mask: padded targets count."""


def causal_lm_loss(logits, input_ids, attention_mask=None):
    return mlm_loss(logits[:, :-1], input_ids[:, 1:])
