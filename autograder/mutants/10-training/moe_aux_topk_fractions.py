"""The load-balancing loss counts all k choices of each token in f_e instead of the top-1 choice."""


def _forward(self, x):
    batch, length, width = x.shape
    tokens = x.reshape(-1, width)
    probs, expert_index, gates, kept = self.route(tokens)
    out = torch.zeros_like(tokens)
    for e, expert in enumerate(self.experts):
        rows, slots = torch.where((expert_index == e) & kept)
        if rows.numel():
            out = out.index_add(0, rows, gates[rows, slots, None] * expert(tokens[rows]))
    chosen = torch.zeros_like(probs).scatter(1, expert_index, 1.0)
    aux = self.n_experts * (chosen.mean(dim=0) / self.top_k * probs.mean(dim=0)).sum()
    return out.reshape(batch, length, width), aux


MoEFeedForward.forward = _forward
