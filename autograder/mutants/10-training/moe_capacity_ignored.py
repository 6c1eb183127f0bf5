"""MoEFeedForward.route never drops an assignment: the capacity is ignored."""


def _route(self, x):
    probs = torch.softmax(self.router(x), dim=-1)
    top_probs, expert_index = probs.topk(self.top_k, dim=-1)
    gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.norm_topk_prob else top_probs
    return probs, expert_index, gates, torch.ones_like(expert_index, dtype=torch.bool)


MoEFeedForward.route = _route
