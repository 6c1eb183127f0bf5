"""configure_optimizer hard-codes nanoGPT's weight decay of 0.1 for the decayed group."""

REPLACE = [
    (
        'groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]',
        'groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]',
    ),
]
