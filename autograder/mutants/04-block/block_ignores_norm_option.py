"""The block checks `norm` but always builds LayerNorms: norm="rmsnorm" gets LayerNorm (with a bias) instead."""

REPLACE = [
    (
        'norm_class = LayerNorm if norm == "layernorm" else RMSNorm',
        "norm_class = LayerNorm",
    ),
]
