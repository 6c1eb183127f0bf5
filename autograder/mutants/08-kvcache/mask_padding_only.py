"""The mask hides only the padding keys, not the future: right for a one-token decode step, wrong in prefill."""

REPLACE = [
    (
        "mask = causal_mask(new, past + new, attention_mask.cpu()).to(x.device)",
        "mask = attention_mask.bool()[:, None, None, :].to(x.device)",
    ),
]
