"""The mask is the full (Tc + Tn, Tc + Tn) causal mask's FIRST Tn rows: a decode step's query sees only the first key."""

REPLACE = [
    (
        "mask = causal_mask(new, past + new, attention_mask.cpu()).to(x.device)",
        "mask = causal_mask(past + new, past + new, attention_mask.cpu())[:, :, :new].to(x.device)",
    ),
]
