"""sample tests `if top_k:` and `if top_p:` instead of `is not None`: top_p=0.0 filters nothing (it should keep only
the likeliest token) and top_k=0 is skipped instead of raising ValueError."""

REPLACE = [
    ("        if top_k is not None:\n            scores = top_k_filter(scores, top_k)\n        if top_p is not None:\n            scores = top_p_filter(scores, top_p)\n        drawn",
     "        if top_k:\n            scores = top_k_filter(scores, top_k)\n        if top_p:\n            scores = top_p_filter(scores, top_p)\n        drawn"),
]
