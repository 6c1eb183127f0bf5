"""beam_search starts from K copies of the prompt, all with score 0: the first step keeps K copies of the
best token instead of K different tokens."""

REPLACE = [
    (
        "    beams, totals = input_ids, torch.zeros(1, dtype=torch.float64)  # (k, T), (k,)",
        "    beams, totals = input_ids.repeat(num_beams, 1), torch.zeros(num_beams, dtype=torch.float64)",
    ),
]
