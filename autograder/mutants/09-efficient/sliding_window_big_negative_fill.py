"""sliding_window_attention masks the keys outside each query's window with -1e4 instead of -inf."""

REPLACE = [
    (
        's = s.masked_fill((rows[:, None] - cols[None, :]).abs() > window, float("-inf"))',
        "s = s.masked_fill((rows[:, None] - cols[None, :]).abs() > window, -1e4)",
    ),
]
