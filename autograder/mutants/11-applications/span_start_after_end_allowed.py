"""best_span allows spans with start > end."""

REPLACE = [
    ("allowed = (e >= s) & (e - s < max_answer_length)  # (T, T)", "allowed = (e - s < max_answer_length)  # (T, T)")
]
