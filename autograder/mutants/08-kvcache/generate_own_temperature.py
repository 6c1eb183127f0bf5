"""generate_cached divides by the temperature itself instead of apply_temperature: temperature = 0 gives inf and a
RuntimeError from multinomial instead of ValueError."""

REPLACE = [
    ("            scores = apply_temperature(last, temperature)", "            scores = last / temperature"),
]
