"""The bias module buckets with the default 32 buckets, whatever num_buckets it was given."""

REPLACE = [
    (
        "buckets = relative_position_bucket(relative, self.bidirectional, self.num_buckets, self.max_distance)",
        "buckets = relative_position_bucket(relative, self.bidirectional, max_distance=self.max_distance)",
    )
]
