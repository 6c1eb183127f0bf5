"""last_token_index is the number of real tokens minus one: right for right padding only."""

REPLACE = [
    (
        "return (positions * (attention_mask != 0).long()).argmax(dim=1)",
        "return (attention_mask != 0).long().sum(dim=1) - 1",
    )
]
