"""task_probabilities accepts temperature <= 0."""

REPLACE = [("if not temperature > 0:\n        raise", "if False:\n        raise")]
