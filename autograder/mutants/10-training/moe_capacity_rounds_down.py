"""MoEFeedForward.capacity rounds down (int) instead of up (math.ceil)."""


def _capacity(self, n_tokens):
    if self.capacity_factor is None:
        return n_tokens * self.top_k
    return int(self.capacity_factor * n_tokens * self.top_k / self.n_experts)


MoEFeedForward.capacity = _capacity
