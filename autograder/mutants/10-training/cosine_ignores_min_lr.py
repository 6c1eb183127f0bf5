"""The cosine decays to 0 whatever min_lr says."""


def cosine_with_warmup(step, warmup_steps, total_steps, max_lr, min_lr=0.0):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return max_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
