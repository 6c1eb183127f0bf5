"""sliding_window_attention builds the full (T, T) band mask and attends densely: right values, O(T^2) memory."""


def sliding_window_attention(q, k, v, window, block=16):
    return masked_attention(q, k, v, sliding_window_mask(q.size(-2), window))
