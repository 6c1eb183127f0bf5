"""train_step calls scaler.update only after an overflow: the growth tracker never counts the good steps."""

REPLACE = [
    (
        "    if scaler is not None:\n        scaler.update(overflow)",
        "    if scaler is not None and overflow:\n        scaler.update(overflow)",
    ),
]
