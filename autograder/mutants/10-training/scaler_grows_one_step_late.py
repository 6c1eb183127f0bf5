"""The scaler grows after growth_interval + 1 good steps (tracker > growth_interval instead of ==)."""

REPLACE = [
    ("if self.growth_tracker == self.growth_interval:", "if self.growth_tracker > self.growth_interval:"),
]
