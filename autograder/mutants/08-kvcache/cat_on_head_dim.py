"""KVCache.append concatenates along the head dim (1) instead of the time dim (2)."""


def _append(self, layer, k, v):
    old_k, old_v = self.keys[layer], self.values[layer]
    if old_k is not None and old_v is not None:
        k = torch.cat([old_k, k], dim=1)
        v = torch.cat([old_v, v], dim=1)
    self.keys[layer], self.values[layer] = k, v
    return k, v


KVCache.append = _append
