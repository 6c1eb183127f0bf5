"""The forecaster's head reads the first position of the window, not the last."""

REPLACE = [
    (
        "forecast: Tensor = self.head(self.norm(states)[:, -1])  # (M, N)",
        "forecast: Tensor = self.head(self.norm(states)[:, 0])  # (M, N)",
    )
]
