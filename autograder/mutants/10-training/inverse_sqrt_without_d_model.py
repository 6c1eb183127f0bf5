"""inverse_sqrt forgets the factor d_model ** -0.5."""


def inverse_sqrt(step, d_model, warmup_steps):
    if step == 0:
        return 0.0
    return min(step**-0.5, step * warmup_steps**-1.5)
