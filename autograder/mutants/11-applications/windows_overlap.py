"""sliding_windows' targets overlap the inputs by one value."""

REPLACE = [
    (
        "return windows[:, :context].clone(), windows[:, context:].clone()",
        "return windows[:, :context].clone(), windows[:, context - 1 : -1].clone()",
    )
]
