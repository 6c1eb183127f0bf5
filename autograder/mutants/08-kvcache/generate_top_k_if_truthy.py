"""generate_cached tests `if top_k:`: top_k=0 is skipped instead of raising ValueError."""

REPLACE = [("            if top_k is not None:\n                scores = top_k_filter(scores, top_k)", "            if top_k:\n                scores = top_k_filter(scores, top_k)")]
