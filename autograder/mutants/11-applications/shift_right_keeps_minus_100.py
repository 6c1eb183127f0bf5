"""shift_right leaves -100 in the decoder input."""

REPLACE = [("return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)", "return shifted")]
