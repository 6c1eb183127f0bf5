"""Layer-wise decay counted from 0 at the top layer: the top layer learns at base_lr."""

REPLACE = [('"lr": base_lr * decay**depth,', '"lr": base_lr * decay ** max(depth - 1, 0) if depth else base_lr,')]
