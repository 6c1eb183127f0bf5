"""decode passes no memory mask: the cross-attention reads the source's padding too."""


def _decode(self, tgt, memory, src_lengths, tgt_lengths):
    length = tgt.shape[1]
    self_mask = causal_mask(length) & padding_mask(tgt_lengths, length)
    return self.decoder(self.embed(tgt, self.tgt_embed), memory, self_mask, None)


EncoderDecoder.decode = _decode
