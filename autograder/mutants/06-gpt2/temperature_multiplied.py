"""apply_temperature multiplies the logits by the temperature instead of dividing."""


def apply_temperature(logits, temperature):
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return logits * temperature
