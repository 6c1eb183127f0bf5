"""head_ablation_loss zeroes the features of the next head."""

REPLACE = [
    (
        "merged[..., head * d_head : (head + 1) * d_head] = 0.0",
        "merged[..., (head + 1) % attn.n_heads * d_head : ((head + 1) % attn.n_heads + 1) * d_head] = 0.0",
    )
]
