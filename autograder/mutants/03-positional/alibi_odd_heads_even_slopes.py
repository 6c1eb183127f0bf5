"""For a head count that is not a power of two, fills the extra heads with the 2nd, 4th, ... slopes of 2P."""


def alibi_slopes(n_heads):
    def geometric(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    power = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = geometric(power)
    if power < n_heads:
        slopes += geometric(2 * power)[1::2][: n_heads - power]
    return torch.tensor(slopes, dtype=torch.float32)
