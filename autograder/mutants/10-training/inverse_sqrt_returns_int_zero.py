"""inverse_sqrt returns the int 0 at step 0 instead of the float 0.0."""

REPLACE = [
    ("    if step == 0:\n        return 0.0", "    if step == 0:\n        return 0"),
]
