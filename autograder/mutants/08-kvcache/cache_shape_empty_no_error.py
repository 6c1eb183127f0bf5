"""cache_shape of an empty cache returns zeros instead of raising ValueError."""


def cache_shape(cache):
    first = cache.keys[0]
    if first is None:
        return (len(cache.keys), 2, 0, 0, 0, 0)
    batch, kv_heads, length, d_head = first.shape
    return (len(cache.keys), 2, batch, kv_heads, length, d_head)
