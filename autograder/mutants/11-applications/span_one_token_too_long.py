"""best_span allows spans of max_answer_length + 1 tokens."""

REPLACE = [
    (
        "allowed = (e >= s) & (e - s < max_answer_length)  # (T, T)",
        "allowed = (e >= s) & (e - s <= max_answer_length)  # (T, T)",
    )
]
