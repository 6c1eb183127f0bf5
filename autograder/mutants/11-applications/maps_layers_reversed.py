"""attention_maps stacks the layers last to first."""

REPLACE = [
    (
        "return torch.stack(caught)\n    # END SOLUTION\n\n\ndef previous_token_score",
        "return torch.stack(caught[::-1])\n    # END SOLUTION\n\n\ndef previous_token_score",
    )
]
