"""The model builds its MLM head without eps=eps: the head's LayerNorm always has MLMHead's default 1e-12."""

REPLACE = [
    (
        "self.mlm_head = MLMHead(d_model, vocab_size, eps=eps)",
        "self.mlm_head = MLMHead(d_model, vocab_size)",
    ),
]
