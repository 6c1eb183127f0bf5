"""T5Stack hands num_buckets to its RelativePositionBias but not max_distance (the default 128 is used)."""

REPLACE = [
    (
        "self.relative_bias = RelativePositionBias(n_heads, num_buckets, max_distance, bidirectional=not is_decoder)",
        "self.relative_bias = RelativePositionBias(n_heads, num_buckets, bidirectional=not is_decoder)",
    ),
]
