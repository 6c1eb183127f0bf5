"""recursive_forecast never appends its forecasts: every step reads the same window."""

REPLACE = [("window = torch.cat([window[:, 1:], step], dim=1)", "window = window")]
