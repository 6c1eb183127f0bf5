"""top_p_filter writes the -inf into the caller's logits (masked_fill_) and returns them."""

REPLACE = [("    return logits.masked_fill(drop, float(\"-inf\"))\n", "    return logits.masked_fill_(drop, float(\"-inf\"))\n")]
