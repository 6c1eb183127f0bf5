"""causal_lm_loss writes -100 into input_ids[:, 1:] (a view), changing the caller's token ids in place."""


def causal_lm_loss(logits, input_ids, attention_mask=None):
    labels = input_ids[:, 1:]
    if attention_mask is not None:
        labels[attention_mask[:, 1:] == 0] = IGNORE_INDEX
    return mlm_loss(logits[:, :-1], labels)
