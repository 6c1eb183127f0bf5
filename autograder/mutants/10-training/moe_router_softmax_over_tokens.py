"""MoEFeedForward.route normalises the router logits over the tokens (dim 0) instead of the experts."""


def _route(self, x):
    probs = torch.softmax(self.router(x), dim=0)
    top_probs, expert_index = probs.topk(self.top_k, dim=-1)
    gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.norm_topk_prob else top_probs
    order = expert_index.T.reshape(-1)
    one_hot = F.one_hot(order, self.n_experts)
    place = ((one_hot.cumsum(dim=0) - 1) * one_hot).sum(dim=-1)
    kept = (place < self.capacity(x.shape[0])).reshape(self.top_k, -1).T
    return probs, expert_index, gates, kept


MoEFeedForward.route = _route
