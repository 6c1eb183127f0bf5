"""Right values, but mlm_loss calls F.cross_entropy, which the exercise forbids."""

import torch.nn.functional as F


def mlm_loss(logits, labels):
    if not (labels != -100).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
