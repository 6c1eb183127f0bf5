"""causal_lm_loss compares logits[:, t] with input_ids[:, t]: no shift, each position "predicts" itself."""


def causal_lm_loss(logits, input_ids, attention_mask=None):
    labels = input_ids
    if attention_mask is not None:
        labels = labels.masked_fill(attention_mask == 0, IGNORE_INDEX)
    return mlm_loss(logits, labels)
