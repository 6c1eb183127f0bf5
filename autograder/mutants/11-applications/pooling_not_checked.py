"""An unknown pooling is accepted (and then treated as mean pooling)."""

REPLACE = [('if pooling not in ("cls", "mean"):\n            raise', "if False:\n            raise")]
