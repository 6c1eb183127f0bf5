"""The [CLS] pooler has no tanh."""

REPLACE = [("pooled = torch.tanh(self.pooler(cls_pool(hidden)))", "pooled = self.pooler(cls_pool(hidden))")]
