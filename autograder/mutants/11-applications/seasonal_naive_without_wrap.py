"""seasonal_naive_forecast does not wrap around the season for horizons past the period."""

REPLACE = [
    (
        "index = torch.tensor([context - period + (h % period) for h in range(horizon)], device=x.device)",
        "index = torch.tensor([min(context - period + h, context - 1) for h in range(horizon)], device=x.device)",
    )
]
