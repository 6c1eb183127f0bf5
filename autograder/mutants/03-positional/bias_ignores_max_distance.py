"""The bias module buckets with the default max_distance (128), whatever it was given."""

REPLACE = [
    (
        "buckets = relative_position_bucket(relative, self.bidirectional, self.num_buckets, self.max_distance)",
        "buckets = relative_position_bucket(relative, self.bidirectional, self.num_buckets)",
    )
]
