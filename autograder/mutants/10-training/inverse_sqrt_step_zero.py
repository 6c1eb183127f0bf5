"""inverse_sqrt applies the formula at step 0 too: 0 ** -0.5 raises ZeroDivisionError."""


def inverse_sqrt(step, d_model, warmup_steps):
    return d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)
