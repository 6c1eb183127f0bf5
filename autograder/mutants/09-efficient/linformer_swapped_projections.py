"""Linformer projects the keys with F and the values with E (swapped)."""


def _forward(self, x):
    length = x.size(1)
    q = split_heads(self.q_proj(x), self.n_heads)
    k = self.F[:, :length] @ split_heads(self.k_proj(x), self.n_heads)
    v = self.E[:, :length] @ split_heads(self.v_proj(x), self.n_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return self.out_proj(merge_heads(torch.softmax(scores, dim=-1) @ v))


Linformer.forward = _forward
