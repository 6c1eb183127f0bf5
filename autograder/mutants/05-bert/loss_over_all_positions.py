"""mlm_loss divides by all B * T positions instead of the number of labelled ones."""


def mlm_loss(logits, labels):
    labelled = labels != -100
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(labelled, picked, torch.zeros_like(picked)).sum() / labels.numel()
