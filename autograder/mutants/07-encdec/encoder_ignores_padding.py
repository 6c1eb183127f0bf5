"""encode runs the encoder without the source padding mask."""


def _encode(self, src, src_lengths):
    return self.encoder(self.embed(src, self.src_embed))


EncoderDecoder.encode = _encode
