"""RMSNorm's default eps is LayerNorm's 1e-5 instead of the documented 1e-6."""

REPLACE = [
    (
        "def __init__(self, d_model: int, eps: float = 1e-6) -> None:",
        "def __init__(self, d_model: int, eps: float = 1e-5) -> None:",
    ),
]
