"""mlm_loss divides by the number of labelled positions unguarded: 0 / 0 = NaN when there are none."""


def mlm_loss(logits, labels):
    labelled = labels != -100
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(labelled, picked, torch.zeros_like(picked)).sum() / labelled.sum()
