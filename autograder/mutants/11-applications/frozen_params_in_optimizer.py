"""layerwise_lr_groups puts frozen parameters in the optimizer too."""

REPLACE = [("        if not param.requires_grad:\n            continue\n", "")]
