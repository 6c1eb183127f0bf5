"""teacher_forcing_loss shortens the caller's tgt_lengths in place (tgt_lengths -= 1)."""


def _loss(self, src, tgt, src_lengths, tgt_lengths, pad_id):
    tgt_lengths -= 1  # the decoder reads tgt[:, :-1]
    logits = self(src, tgt[:, :-1], src_lengths, tgt_lengths)
    return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=pad_id)


EncoderDecoder.teacher_forcing_loss = _loss
