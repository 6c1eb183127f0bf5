"""teacher_forcing_loss marks the padding of the labels with -100 through a view, which changes the caller's tgt."""


def _loss(self, src, tgt, src_lengths, tgt_lengths, pad_id):
    logits = self(src, tgt[:, :-1], src_lengths, tgt_lengths - 1)
    labels = tgt[:, 1:]  # a view of tgt
    labels[labels == pad_id] = -100
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten())


EncoderDecoder.teacher_forcing_loss = _loss
