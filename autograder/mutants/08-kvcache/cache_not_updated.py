"""KVCache.append returns cached + new but only stores the first call's tensors: later steps lose the decoded tokens."""


def _append(self, layer, k, v):
    old_k, old_v = self.keys[layer], self.values[layer]
    if old_k is not None and old_v is not None:
        return torch.cat([old_k, k], dim=2), torch.cat([old_v, v], dim=2)
    self.keys[layer], self.values[layer] = k, v
    return k, v


KVCache.append = _append
