"""seq2seq_loss feeds the labels themselves to the decoder: it sees the token it must predict."""

REPLACE = [
    (
        "decoder_input = shift_right(labels, decoder_start_token_id, pad_token_id)",
        "decoder_input = labels.masked_fill(labels == IGNORE_INDEX, pad_token_id)",
    )
]
