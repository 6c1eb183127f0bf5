"""Dropout checks only the upper bound: Dropout(-0.1) is accepted instead of raising ValueError."""

REPLACE = [
    (
        "if not 0.0 <= p <= 1.0:",
        "if p > 1.0:",
    ),
]
