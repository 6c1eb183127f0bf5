"""MoEFeedForward.route renormalises the gates whenever k > 1, ignoring norm_topk_prob."""

REPLACE = [
    (
        "gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.norm_topk_prob else top_probs",
        "gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.top_k > 1 else top_probs",
    ),
]
