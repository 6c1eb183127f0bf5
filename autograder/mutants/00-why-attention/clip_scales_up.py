"""Always rescales to max_norm, blowing small gradients up as well."""

REPLACE = [("scale = torch.clamp(max_norm / norm, max=1.0)", "scale = max_norm / norm")]
