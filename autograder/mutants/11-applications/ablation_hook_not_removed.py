"""head_ablation_loss leaves the ablation hook on the model."""

REPLACE = [
    (
        "    finally:\n        handle.remove()\n    return float(ablated - intact)",
        "    finally:\n        pass\n    return float(ablated - intact)",
    )
]
