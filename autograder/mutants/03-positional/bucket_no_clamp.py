"""Forgets to clamp far distances to the last bucket: past max_distance the bucket index runs over."""


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    if bidirectional:
        num_buckets //= 2
        bucket = (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        bucket = torch.zeros_like(relative_position, dtype=torch.long)
        distance = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    far = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    return bucket + torch.where(distance < max_exact, distance.long(), far)
