"""The relative position bias is added in the first layer of each stack only, not shared with the others."""


def _forward(self, x, mask=None, memory=None, memory_mask=None):
    bias = self.relative_bias(x.shape[1], x.shape[1])
    h = self.dropout(x)
    for i, layer in enumerate(self.layers):
        h = layer(h, mask=mask, position_bias=bias if i == 0 else None, memory=memory, memory_mask=memory_mask)
    return self.dropout(self.final_norm(h))


T5Stack.forward = _forward
