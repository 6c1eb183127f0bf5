"""apply_temperature divides the caller's logits in place (logits /= temperature)."""


def apply_temperature(logits, temperature):
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits /= temperature
    return logits
