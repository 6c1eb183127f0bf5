"""MoEFeedForward.route never renormalises a single gate ("Switch keeps the raw probability"), even with norm_topk_prob."""

REPLACE = [
    (
        "gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.norm_topk_prob else top_probs",
        "gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.norm_topk_prob and self.top_k > 1 else top_probs",
    ),
]
