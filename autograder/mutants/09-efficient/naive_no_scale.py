"""naive_attention forgets to divide the scores by sqrt(D)."""


def naive_attention(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1)
    if causal:
        allowed = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    return torch.exp(scores - lse[..., None]) @ v, lse
