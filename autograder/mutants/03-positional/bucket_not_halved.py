"""Bidirectional buckets without halving: both directions use all the buckets, offset by num_buckets."""


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    bucket = torch.zeros_like(relative_position, dtype=torch.long)
    distance = relative_position.abs() if bidirectional else -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    far = torch.clamp(max_exact + (log_ratio * (num_buckets - max_exact)).long(), max=num_buckets - 1)
    return bucket + torch.where(distance < max_exact, distance.long(), far)
