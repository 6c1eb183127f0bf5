"""Linformer uses all seq_len columns of E and F, so inputs shorter than seq_len fail."""


def _forward(self, x):
    length = x.size(1)
    q = split_heads(self.q_proj(x), self.n_heads)
    k = self.E @ split_heads(self.k_proj(x), self.n_heads)
    v = self.F @ split_heads(self.v_proj(x), self.n_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return self.out_proj(merge_heads(torch.softmax(scores, dim=-1) @ v))


Linformer.forward = _forward
