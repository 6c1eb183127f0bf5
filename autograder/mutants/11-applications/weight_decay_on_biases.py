"""Biases and norm weights get weight decay too."""

REPLACE = [('"weight_decay": weight_decay if decayed else 0.0}', '"weight_decay": weight_decay}')]
