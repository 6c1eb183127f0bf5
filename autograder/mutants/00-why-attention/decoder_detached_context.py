"""The context is detached: no gradient reaches the attention or the encoder through it."""

REPLACE = [
    (
        "context, weights = self.attention(state, enc_states, src_mask)  # (B, H), (B, S)",
        "context, weights = self.attention(state, enc_states, src_mask)  # (B, H), (B, S)\n        context = context.detach()",
    )
]
