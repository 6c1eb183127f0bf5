"""freeze accepts an unknown mode (it then trains everything)."""

REPLACE = [("if mode not in FREEZE_MODES:\n        raise", "if False:\n        raise")]
