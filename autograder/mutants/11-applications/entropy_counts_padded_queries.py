"""attention_entropy averages over padded queries too."""

REPLACE = [
    (
        "    if attention_mask is None:\n        return row_entropy.mean(dim=(0, 2))\n",
        "    if True:\n        return row_entropy.mean(dim=(0, 2))\n",
    )
]
