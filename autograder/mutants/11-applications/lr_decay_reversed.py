"""Layer-wise decay runs the wrong way: layer 0 learns fastest."""

REPLACE = [
    (
        "depth = layer_depth(name, n_layers, backbone)",
        "depth = layer_depth(name, n_layers, backbone)\n        depth = n_layers + 1 - depth if 0 < depth <= n_layers else depth",
    )
]
