"""Start and end logits come from the wrong columns of qa_outputs."""

REPLACE = [
    (
        "start_logits, end_logits = scores[..., 0], scores[..., 1]",
        "start_logits, end_logits = scores[..., 1], scores[..., 0]",
    )
]
