"""The multi-task model pools position 0 instead of the masked mean."""

REPLACE = [
    (
        "logits: Tensor = self.heads[task](mean_pool(hidden, attention_mask))",
        "logits: Tensor = self.heads[task](cls_pool(hidden))",
    )
]
