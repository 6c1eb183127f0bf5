"""Teacher forcing without the shift: the decoder reads tgt[:, :-1] and is scored on tgt[:, :-1] (copying)."""


def _loss(self, src, tgt, src_lengths, tgt_lengths, pad_id):
    logits = self(src, tgt[:, :-1], src_lengths, tgt_lengths - 1)
    return F.cross_entropy(logits.flatten(0, 1), tgt[:, :-1].flatten(), ignore_index=pad_id)


EncoderDecoder.teacher_forcing_loss = _loss
