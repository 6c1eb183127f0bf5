"""The cosine's progress divides by total_steps - warmup_steps, which is 0 when they are equal (no max(1, ...))."""

REPLACE = [
    (
        "progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # from 0 to 1",
        "progress = (step - warmup_steps) / (total_steps - warmup_steps)",
    ),
]
