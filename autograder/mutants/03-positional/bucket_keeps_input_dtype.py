"""Returns the buckets in the dtype of relative_position (int32 in, int32 out) instead of torch.long."""

_bucket = relative_position_bucket


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    return _bucket(relative_position, bidirectional, num_buckets, max_distance).to(relative_position.dtype)
