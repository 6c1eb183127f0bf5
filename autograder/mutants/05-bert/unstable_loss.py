"""mlm_loss takes log(softmax) with a naive softmax: exp overflows for large logits."""


def mlm_loss(logits, labels):
    labelled = labels != -100
    exp = torch.exp(logits)
    log_probs = torch.log(exp / exp.sum(dim=-1, keepdim=True))
    picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(labelled, picked, torch.zeros_like(picked)).sum() / labelled.sum().clamp(min=1)
